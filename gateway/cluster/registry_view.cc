#include "gateway/cluster/registry_view.h"

#include "base/log.h"
#include "base/text.h"

namespace xcg {
namespace {

// Keeps `table` (name -> what `decode` makes of the value) in step with a watch on `prefix`.
template <class T, class Decode>
WatchCallbacks mirror(std::map<std::string, T>& table, bool& ready, const std::string& prefix,
                      Decode decode) {
  auto apply = [&table, &prefix, decode](const std::string& key, const std::string& value, bool put) {
    std::string name = key.substr(prefix.size());
    std::optional<T> decoded = put ? decode(value) : std::nullopt;
    if (put && !decoded) log::warn("registry: ignoring a malformed record {}", printable(key, 200));
    if (decoded) table[name] = *decoded;
    else table.erase(name);
  };
  return WatchCallbacks{[&table, &ready, apply](const RangeResult& r) {
                          table.clear();
                          for (const auto& kv : r.kvs) apply(kv.key, kv.value, true);
                          ready = true;
                        },
                        [apply](const std::vector<WatchEvent>& events) {
                          for (const auto& e : events)
                            apply(e.kv.key, e.kv.value, e.type == WatchEvent::Type::put);
                        }};
}

std::optional<std::string> node_name(const std::string& value) {
  if (value.empty()) return std::nullopt;
  return value;
}

}  // namespace

RegistryView::RegistryView(EtcdClient& client, const std::string& prefix)
    : nodes_prefix_(xcg::nodes_prefix(prefix)), domains_prefix_(xcg::domains_prefix(prefix)) {
  nodes_watch_ = client.watch(nodes_prefix_, 0, mirror(nodes_, nodes_ready_, nodes_prefix_, &decode_node));
  domains_watch_ =
      client.watch(domains_prefix_, 0, mirror(domains_, domains_ready_, domains_prefix_, &node_name));
}

std::optional<RegisteredNode> RegistryView::lookup(const std::string& domain) const {
  auto d = domains_.find(domain);
  if (d == domains_.end()) return std::nullopt;
  auto n = nodes_.find(d->second);
  if (n == nodes_.end()) return std::nullopt;
  return RegisteredNode{n->first, n->second.address, n->second.host_key_fingerprint};
}

}  // namespace xcg
