// The key map's layout in etcd both ways, and that a bad value costs only itself.
#include "gateway/cluster/key_map.h"

#include <catch2/catch.hpp>

#include "config/config.h"
#include "tests/config/samples.h"

namespace xcg {
namespace {

using namespace config::samples;

std::shared_ptr<const config::Config> two_domains() {
  return config::parse_config(
      "listen: ['127.0.0.1:2222']\nhost_keys: [/k]\nhypervisor: sim\ndomains:\n"
      "  web1: {keys: ['" +
          kAlice + "']}\n  db: {keys: [{key: '" + kBob + "', readonly: true}]}\n",
      "t.yaml");
}

std::vector<KeyValue> as_kvs(const std::vector<KeyEntry>& entries) {
  std::vector<KeyValue> out;
  out.reserve(entries.size());
  for (const auto& e : entries) out.push_back(KeyValue{.key = e.key, .value = e.value});
  return out;
}

TEST_CASE("key map: domains' keys become keys/DOMAIN/FINGERPRINT", "[keymap]") {
  auto entries = key_map_entries("/xcg/", two_domains()->domains);
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].key == "/xcg/keys/db/" + kBobFingerprint);
  CHECK(entries[0].value == "{\"key\":\"" + kBob + "\",\"readonly\":true}");
  CHECK(entries[1].key == "/xcg/keys/web1/" + kAliceFingerprint);
  CHECK(entries[1].value == "{\"key\":\"" + kAlice + "\",\"readonly\":false}");
}

TEST_CASE("key map: read back, the same keys per domain", "[keymap]") {
  auto map = read_key_map("/xcg/", as_kvs(key_map_entries("/xcg/", two_domains()->domains)));
  CHECK(map.problems.empty());
  REQUIRE(map.domains.size() == 2);
  REQUIRE(map.domains["web1"].size() == 1);
  CHECK(map.domains["web1"][0].key.fingerprint() == kAliceFingerprint);
  CHECK(map.domains["web1"][0].key.comment == "alice@laptop");
  CHECK(!map.domains["web1"][0].readonly);
  REQUIRE(map.domains["db"].size() == 1);
  CHECK(map.domains["db"][0].readonly);
  CHECK(map.key_count() == 2);
}

TEST_CASE(
    "key map: entries read one by one assemble into the map; a key under two domains stays with "
    "the first in etcd key order",
    "[keymap]") {
  auto good = key_map_entries("/xcg/", two_domains()->domains);
  KeyMapEntries entries;
  for (const auto& kv : as_kvs(good)) entries.insert_or_assign(kv.key, read_key_entry("/xcg/", kv));
  std::string alice_in_a = "/xcg/keys/a/" + kAliceFingerprint;
  entries.insert_or_assign(alice_in_a,
                           read_key_entry("/xcg/", KeyValue{.key = alice_in_a, .value = good[1].value}));
  auto map = assemble_key_map(entries);
  CHECK(map.domains.contains("a"));
  CHECK_FALSE(map.domains.contains("web1"));
  REQUIRE(map.problems.size() == 1);
  CHECK(map.problems[0].str() ==
        "/xcg/keys/web1/" + kAliceFingerprint + ": the key is already a key of domain 'a'");
  entries.erase(alice_in_a);
  map = assemble_key_map(entries);
  CHECK(map.problems.empty());
  REQUIRE(map.domains["web1"].size() == 1);
  CHECK(map.domains["web1"][0].key.fingerprint() == kAliceFingerprint);
}

TEST_CASE("key map: each bad value is left out with its reason, the rest kept", "[keymap]") {
  auto good = key_map_entries("/xcg/", two_domains()->domains);
  auto kvs = as_kvs(good);
  kvs.push_back({.key = "/xcg/keys/web2/SHA256:x", .value = "not json"});
  kvs.push_back({.key = "/xcg/keys/web3/" + kAliceFingerprint, .value = "{\"readonly\":true}"});
  kvs.push_back({.key = "/xcg/keys/web4/SHA256:wrong", .value = good[1].value});
  kvs.push_back({.key = "/xcg/keys/web5/" + kAliceFingerprint, .value = good[1].value});
  kvs.push_back({.key = "/xcg/keys/bad name/" + kAliceFingerprint, .value = good[1].value});
  kvs.push_back({.key = "/xcg/keys/web6", .value = good[1].value});
  kvs.push_back({.key = "/xcg/keys/web7/" + kAliceFingerprint,
                 .value = "{\"key\":\"" + kAlice + "\",\"readonly\":\"yes\"}"});
  kvs.push_back({.key = "/xcg/keys/web8/SHA256:y", .value = "{\"key\":\"ssh-foo AAAA\"}"});
  auto map = read_key_map("/xcg/", kvs);
  CHECK(map.key_count() == 2);
  std::vector<std::string> problems;
  for (const auto& p : map.problems) problems.push_back(p.str());
  CHECK(problems == std::vector<std::string>{
                        "/xcg/keys/web2/SHA256:x: the value is not a JSON object",
                        "/xcg/keys/web3/" + kAliceFingerprint + ": no \"key\" string in the value",
                        "/xcg/keys/web4/SHA256:wrong: the key's fingerprint is " + kAliceFingerprint +
                            ", not the one in its name",
                        "/xcg/keys/web5/" + kAliceFingerprint + ": the key is already a key of domain 'web1'",
                        "/xcg/keys/bad name/" + kAliceFingerprint + ": bad domain name 'bad name'",
                        "/xcg/keys/web6: expected keys/DOMAIN/FINGERPRINT",
                        "/xcg/keys/web7/" + kAliceFingerprint + ": \"readonly\" is not true or false",
                        "/xcg/keys/web8/SHA256:y: bad public key: unknown key type 'ssh-foo'"});
}

TEST_CASE("key map: the YAML export reads back as the same map", "[keymap]") {
  auto config = two_domains();
  auto yaml = key_map_yaml(read_key_map("/xcg/", as_kvs(key_map_entries("/xcg/", config->domains))).domains);
  auto again =
      config::parse_config("listen: ['127.0.0.1:2222']\nhost_keys: [/k]\nhypervisor: sim\n" + yaml, "t.yaml");
  CHECK(key_map_entries("/xcg/", again->domains) == key_map_entries("/xcg/", config->domains));
}

TEST_CASE("with_domain_keys: a node keeps its domains, a front takes etcd's", "[keymap]") {
  auto node = two_domains();
  auto map = read_key_map("/xcg/", as_kvs(key_map_entries("/xcg/", node->domains)));
  map.domains["web1"].clear();
  map.domains["elsewhere"] = map.domains["db"];
  map.domains.erase("db");
  auto effective = config::with_domain_keys(*node, map.domains);
  CHECK(effective->domains.size() == 2);
  CHECK(effective->domains.at("web1").keys.empty());
  CHECK(effective->domains.at("db").keys.empty());
  CHECK(effective->domain_for_key(node->domains.at("web1").keys[0].key.blob) == nullptr);
  auto front = config::parse_config(
      "listen: ['127.0.0.1:2222']\nhost_keys: [/k]\ncluster: {role: front, "
      "endpoints: ['http://127.0.0.1:2379']}\n",
      "t.yaml");
  auto seen = config::with_domain_keys(*front, map.domains);
  REQUIRE(seen->domains.size() == 2);
  auto owner = seen->domain_for_key(map.domains["elsewhere"][0].key.blob);
  REQUIRE(owner);
  CHECK(owner->name == "elsewhere");
  CHECK(owner->allows(config::Action::reboot));
}

}  // namespace
}  // namespace xcg
