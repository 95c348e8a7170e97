// A node's acceptance of its fronts: the user name's parts, and which logins are granted.
#include "gateway/broker/front_login.h"

#include <catch2/catch.hpp>

#include "config/config.h"
#include "tests/config/samples.h"

namespace xcg::gateway {
namespace {

using namespace config::samples;

// Alice's key reaches web1 (read-write); Bob's is the front's. `ro` makes Alice read-only.
std::shared_ptr<const config::Config> node(bool ro = false) {
  return config::parse_config(
      "listen: ['127.0.0.1:2222']\nhost_keys: [/k]\nhypervisor: sim\ndomains:\n"
      "  web1: {keys: [{key: '" +
          kAlice + "', readonly: " + (ro ? "true" : "false") +
          "}]}\n  db: {}\n  quiet: {actions: [reboot]}\nfronts: ['" + kBob + "']\n",
      "t.yaml");
}

std::string user(const std::string& domain, const std::string& fp, const std::string& mode) {
  return "xcg-front:" + domain + ":" + fp + ":" + mode;
}

const config::PublicKey& key_of(const config::Config& c, const std::string& domain) {
  return c.domains.at(domain).keys.at(0).key;
}

TEST_CASE("front user: domain, the customer's fingerprint (with its ':') and the mode", "[front]") {
  auto u = parse_front_user(user("web1", kAliceFingerprint, "ro"));
  REQUIRE(u);
  CHECK(u->domain == "web1");
  CHECK(u->fingerprint == kAliceFingerprint);
  CHECK(u->readonly);
  CHECK(!parse_front_user(user("web1", kAliceFingerprint, "rx")));
  CHECK(!parse_front_user(user("web 1", kAliceFingerprint, "rw")));
  CHECK(!parse_front_user("xcg-front:web1:rw"));
  CHECK(!parse_front_user("web1"));
  CHECK(!parse_front_user("xcg-front:web1::rw"));
}

TEST_CASE("front grant: a front key, this node's domain, one of its keys", "[front]") {
  auto c = node();
  const auto& front = c->fronts.at(0).key;
  auto grant = front_grant(*c, front, user("web1", kAliceFingerprint, "rw"));
  REQUIRE(grant);
  CHECK(grant->domain->name == "web1");
  CHECK(grant->key->key.fingerprint() == kAliceFingerprint);
  CHECK(!grant->readonly);
  // The customer's own key is not a front's.
  CHECK(!front_grant(*c, key_of(*c, "web1"), user("web1", kAliceFingerprint, "rw")));
  // Alice's key is not one of db's; nor is there a domain web9 here.
  CHECK(!front_grant(*c, front, user("db", kAliceFingerprint, "rw")));
  CHECK(!front_grant(*c, front, user("web9", kAliceFingerprint, "rw")));
  CHECK(!front_grant(*c, front, user("web1", kBobFingerprint, "rw")));
  CHECK(!front_grant(*c, front, "web1"));
}

TEST_CASE("front grant: read-only is the narrower of the front's word and the key's", "[front]") {
  auto rw = node(false);
  CHECK(front_grant(*rw, rw->fronts.at(0).key, user("web1", kAliceFingerprint, "ro"))->readonly);
  auto ro = node(true);
  CHECK(front_grant(*ro, ro->fronts.at(0).key, user("web1", kAliceFingerprint, "rw"))->readonly);
  CHECK(front_grant(*ro, ro->fronts.at(0).key, user("web1", kAliceFingerprint, "ro"))->readonly);
}

TEST_CASE("front grant: a browser with no key behind it gets a domain that allows the console", "[front]") {
  auto c = node();
  const auto& front = c->fronts.at(0).key;
  auto grant = front_grant(*c, front, user("db", "browser", "ro"));
  REQUIRE(grant);
  CHECK(grant->domain->name == "db");
  CHECK(grant->key == nullptr);
  CHECK(grant->readonly);
  CHECK(!front_grant(*c, front, user("db", "browser", "rw"))->readonly);
  CHECK(!front_grant(*c, front, user("quiet", "browser", "rw")));            // no console there
  CHECK(!front_grant(*c, key_of(*c, "web1"), user("db", "browser", "rw")));  // only a front
  CHECK(!front_grant(*c, front, user("web9", "browser", "rw")));
}

}  // namespace
}  // namespace xcg::gateway
