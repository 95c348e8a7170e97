// The key map kept in place: a change touches only its domains, and after every event the map
// (and a config kept with set_domain_keys) is what a fresh read of the same values gives.
#include "gateway/cluster/key_map_state.h"

#include <catch2/catch.hpp>
#include <functional>
#include <set>

#include "config/config.h"

namespace xcg {
namespace {

constexpr std::string_view kPrefix = "/xcg/";

// A well-formed ed25519 key of its own for each number.
config::DomainKey key_number(int n, bool readonly = false) {
  std::string blob("\0\0\0\x0bssh-ed25519\0\0\0\x20", 19);
  blob += std::string(31, 'k') + static_cast<char>(n);
  auto key = config::parse_public_key("ssh-ed25519 " + base64_encode(blob) + " customer" + std::to_string(n));
  REQUIRE(key);
  return config::DomainKey{.key = *key, .readonly = readonly};
}

// The store as the events leave it, for a fresh read to compare with.
class Store {
 public:
  WatchEvent put(const std::string& domain, int n, bool readonly = false) {
    KeyValue kv{.key = key_map_path(kPrefix, domain, key_number(n).key),
                .value = key_map_value(key_number(n, readonly))};
    kv.mod_revision = ++revision_;
    kvs_.insert_or_assign(kv.key, kv);
    return WatchEvent{.type = WatchEvent::Type::put, .kv = kv};
  }
  WatchEvent put_raw(const std::string& etcd_key, const std::string& value) {
    KeyValue kv{.key = std::string(kPrefix) + "keys/" + etcd_key, .value = value};
    kv.mod_revision = ++revision_;
    kvs_.insert_or_assign(kv.key, kv);
    return WatchEvent{.type = WatchEvent::Type::put, .kv = kv};
  }
  WatchEvent del(const std::string& domain, int n) {
    KeyValue kv{.key = key_map_path(kPrefix, domain, key_number(n).key)};
    kv.mod_revision = ++revision_;
    kvs_.erase(kv.key);
    return WatchEvent{.type = WatchEvent::Type::del, .kv = kv};
  }
  std::vector<KeyValue> kvs() const {
    std::vector<KeyValue> out;
    for (const auto& [key, kv] : kvs_) out.push_back(kv);
    return out;
  }

 private:
  std::map<std::string, KeyValue> kvs_;
  int64_t revision_ = 1;
};

std::string problems_text(const std::vector<KeyMapProblem>& problems) {
  std::string out;
  for (const auto& p : problems) out += p.str() + "\n";
  return out;
}

std::shared_ptr<const config::Config> base_config(bool front) {
  std::string text = "listen: ['127.0.0.1:2222']\nhost_keys: [/k]\nhypervisor: sim\n";
  if (front) text += "cluster: {role: front, endpoints: ['http://127.0.0.1:2379']}\n";
  else text += "cluster: {endpoints: ['http://127.0.0.1:2379']}\ndomains:\n  a: {}\n  b: {}\n  c: {}\n";
  return config::parse_config(text, "t.yaml");
}

// The domains, their keys, and which domain each key logs in to.
std::string config_text(const config::Config& c, const std::vector<config::DomainKey>& all_keys) {
  DomainKeys keys;
  for (const auto& [name, d] : c.domains) keys[name] = d.keys;
  std::string out = key_map_yaml(keys);
  for (const auto& k : all_keys) {
    const config::Domain* d = c.domain_for_key(k.key.blob);
    out += k.key.fingerprint() + " -> " + (d ? d->name : "none") + "\n";
  }
  return out;
}

TEST_CASE("key map state: a change touches only its domain", "[keymap]") {
  Store store;
  KeyMapState state{std::string(kPrefix)};
  for (int n = 1; n <= 3; ++n) store.put("d" + std::to_string(n), n);
  auto config = config::with_domain_keys(*base_config(true), state.reset(store.kvs()).domains);
  const config::Domain* other = &config->domains.at("d2");
  const config::DomainKey* others_key = &other->keys.at(0);

  auto change = state.apply({store.del("d1", 1), store.put("d3", 4)});
  REQUIRE(change.domains.size() == 2);
  CHECK(change.domains.at("d1").empty());
  CHECK(change.domains.at("d3").size() == 2);
  CHECK(change.problems.empty());
  for (const auto& [domain, keys] : change.domains) config::set_domain_keys(*config, domain, keys);
  CHECK(!config->domains.contains("d1"));
  CHECK(config->domains.at("d3").keys.size() == 2);
  CHECK(&config->domains.at("d2") == other);
  CHECK(&other->keys.at(0) == others_key);
}

TEST_CASE("key map state: after every event, what a fresh read gives", "[keymap]") {
  bool front = GENERATE(true, false);
  Store store;
  KeyMapState state{std::string(kPrefix)};
  store.put("a", 1);
  store.put("b", 2);
  auto config = config::with_domain_keys(*base_config(front), state.reset(store.kvs()).domains);
  std::vector<config::DomainKey> all_keys;
  for (int n = 1; n <= 6; ++n) all_keys.push_back(key_number(n));

  // Each event made as it is applied, so that the store is what it leaves.
  std::vector<std::function<WatchEvent()>> series = {
      [&] { return store.put("a", 3); },        // a second key
      [&] { return store.put("c", 4); },        // a new domain
      [&] { return store.put("a", 3, true); },  // overwritten: read-only now
      [&] { return store.put("b", 1); },        // a's key listed under b too: a keeps it
      [&] { return store.del("a", 1); },        // so b has it now
      [&] { return store.put("a", 1); },        // back in a, listed first: a again
      [&] { return store.put_raw("c/SHA256:nonsense", "not json"); },  // a bad value costs only itself
      [&] { return store.del("b", 2); },                               // b keeps only the shared key
      [&] { return store.del("b", 1); },                               // b is empty
      [&] { return store.put("b", 5); },                               // and back
      [&] { return store.put("c", 3); },                               // moved: a then c
      [&] { return store.del("a", 3); },                               // c has it now
      [&] { return store.put("zz", 6); },                              // a domain a node does not have
  };
  auto apply_and_compare = [&](const std::vector<WatchEvent>& events) {
    auto change = state.apply(events);
    for (const auto& [domain, keys] : change.domains) config::set_domain_keys(*config, domain, keys);
    KeyMap fresh = read_key_map(kPrefix, store.kvs());
    CHECK(key_map_yaml(state.whole().domains) == key_map_yaml(fresh.domains));
    CHECK(problems_text(state.whole().problems) == problems_text(fresh.problems));
    CHECK(state.key_count() == fresh.key_count());
    CHECK(config_text(*config, all_keys) ==
          config_text(*config::with_domain_keys(*base_config(front), fresh.domains), all_keys));
  };
  for (size_t i = 0; i < series.size(); ++i) {
    WatchEvent event = series[i]();
    INFO("after event " << i << ": " << event.kv.key);
    apply_and_compare({event});
  }
  INFO("a key moved from b to a in one transaction");
  apply_and_compare({store.del("b", 5), store.put("a", 5)});
  // A snapshot of the same store converges to it.
  KeyMapState again{std::string(kPrefix)};
  CHECK(key_map_yaml(again.reset(store.kvs()).domains) == key_map_yaml(state.whole().domains));
}

TEST_CASE("key map state: a change reports the problems of the values it changed only", "[keymap]") {
  Store store;
  KeyMapState state{std::string(kPrefix)};
  store.put("a", 1);
  store.put_raw("a/SHA256:old", "not json");
  state.reset(store.kvs());
  auto change = state.apply({store.put("b", 1), store.put_raw("b/SHA256:new", "{}")});
  std::set<std::string> said;
  for (const auto& p : change.problems) said.insert(p.str());
  CHECK(said == std::set<std::string>{"/xcg/keys/b/" + key_number(1).key.fingerprint() +
                                          ": the key is already a key of domain 'a'",
                                      "/xcg/keys/b/SHA256:new: no \"key\" string in the value"});
  CHECK(change.domains.size() == 2);  // a holds the key b lists too: both looked at
}

TEST_CASE("key map state: a snapshot replaces the map whole", "[keymap]") {
  Store store;
  KeyMapState state{std::string(kPrefix)};
  store.put("a", 1);
  state.reset(store.kvs());
  Store other;
  other.put("b", 2);
  KeyMap whole = state.reset(other.kvs());
  CHECK(key_map_yaml(whole.domains) == key_map_yaml(read_key_map(kPrefix, other.kvs()).domains));
  CHECK(state.key_count() == 1);
  auto change = state.apply({other.del("b", 2)});
  CHECK(change.domains.at("b").empty());
  CHECK(state.whole().domains.empty());
}

}  // namespace
}  // namespace xcg
