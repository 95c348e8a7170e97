#include "gateway/cluster/registry_view.h"

#include "base/log.h"
#include "base/text.h"

namespace xcg {
namespace {

// Keeps `table` (name -> what `decode` makes of the key's value) in step with a watch on `prefix`.
template <class T, class Decode>
WatchCallbacks mirror(std::map<std::string, T>& table, bool& ready, const std::string& prefix,
                      Decode decode) {
  auto apply = [&table, &prefix, decode](const KeyValue& kv, bool put) {
    std::string name = kv.key.substr(prefix.size());
    std::optional<T> decoded = put ? decode(kv) : std::nullopt;
    if (put && !decoded) log::warn("registry: ignoring a malformed record {}", printable(kv.key, 200));
    if (decoded) table[name] = *decoded;
    else table.erase(name);
  };
  return WatchCallbacks{[&table, &ready, apply](const RangeResult& r) {
                          table.clear();
                          for (const auto& kv : r.kvs) apply(kv, true);
                          ready = true;
                        },
                        [apply](const std::vector<WatchEvent>& events) {
                          for (const auto& e : events) apply(e.kv, e.type == WatchEvent::Type::put);
                        }};
}

std::optional<NodeInfo> node_record(const KeyValue& kv) { return decode_node(kv.value); }

std::optional<DomainRecord> domain_record(const KeyValue& kv) {
  if (kv.value.empty()) return std::nullopt;
  return DomainRecord{kv.value, kv.mod_revision};
}

}  // namespace

RegistryView::RegistryView(EtcdClient& client, const std::string& prefix)
    : nodes_prefix_(xcg::nodes_prefix(prefix)), domains_prefix_(xcg::domains_prefix(prefix)) {
  nodes_watch_ = client.watch(nodes_prefix_, 0, mirror(nodes_, nodes_ready_, nodes_prefix_, &node_record));
  domains_watch_ =
      client.watch(domains_prefix_, 0, mirror(domains_, domains_ready_, domains_prefix_, &domain_record));
}

std::optional<RegisteredNode> RegistryView::lookup(const std::string& domain) const {
  auto d = domains_.find(domain);
  if (d == domains_.end()) return std::nullopt;
  auto n = nodes_.find(d->second.node);
  if (n == nodes_.end()) return std::nullopt;
  return RegisteredNode{n->first, n->second.address, n->second.host_key_fingerprint, d->second.revision};
}

}  // namespace xcg
