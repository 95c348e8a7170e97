// What a reload does to logged-in sessions, and which changes wait for a restart.
#include <catch2/catch.hpp>

#include "config/config.h"
#include "gateway/broker/reload_plan.h"
#include "tests/config/samples.h"

using namespace xcg;
using namespace xcg::gateway;

namespace {

using namespace xcg::config::samples;

const std::string kHead =
    "listen: [\"127.0.0.1:2222\"]\n"
    "host_keys: [/etc/xcg/host_key]\n"
    "hypervisor: sim\n";

std::shared_ptr<const config::Config> config_of(const std::string& domains, const std::string& head = kHead) {
  return config::parse_config(head + "domains:\n" + domains, "t.yaml");
}

// Alice logged in to web1, with the rights the config gave her then.
SessionRecord alice_on_web1(bool readonly = false) {
  SessionRecord s;
  s.authorized = true;
  s.domain = "web1";
  s.key_blob = config::parse_public_key(kAlice)->blob;
  s.readonly = readonly;
  return s;
}

std::string web1_with(const std::string& key_entry, const std::string& actions = "[console, reboot]") {
  return "  web1:\n    actions: " + actions + "\n    keys:\n      - " + key_entry + "\n";
}

}  // namespace

TEST_CASE("an unchanged key keeps every right", "[reload_plan]") {
  auto c = config_of(web1_with("\"" + kAlice + "\""));
  RightsChange r = rights_after_reload(*c, alice_on_web1());
  CHECK_FALSE(r.revoke);
  CHECK_FALSE(r.withdraw_console);
  CHECK_FALSE(r.make_readonly);
}

TEST_CASE("a removed key, or one moved to another domain, revokes the session", "[reload_plan]") {
  CHECK(rights_after_reload(*config_of(web1_with("\"" + kBob + "\"")), alice_on_web1()).revoke);
  auto moved = config_of(web1_with("\"" + kBob + "\"") + "  db1:\n    keys: [\"" + kAlice + "\"]\n");
  CHECK(rights_after_reload(*moved, alice_on_web1()).revoke);
}

TEST_CASE("a front's session ends when the node no longer trusts that front", "[reload_plan]") {
  auto alice = "\"" + kAlice + "\"";
  auto trusted = config_of(web1_with(alice) + "fronts: [\"" + kBob + "\"]\n");
  auto dropped = config_of(web1_with(alice));
  SessionRecord s = alice_on_web1();
  s.front_key_blob = config::parse_public_key(kBob)->blob;
  CHECK_FALSE(rights_after_reload(*trusted, s).revoke);
  CHECK(rights_after_reload(*dropped, s).revoke);
  CHECK_FALSE(rights_after_reload(*dropped, alice_on_web1()).revoke);
}

TEST_CASE("a key made read-only narrows at once; the other way waits for the next login", "[reload_plan]") {
  auto ro = config_of(web1_with("{key: \"" + kAlice + "\", readonly: true}"));
  CHECK(rights_after_reload(*ro, alice_on_web1()).make_readonly);
  CHECK_FALSE(rights_after_reload(*ro, alice_on_web1(/*readonly=*/true)).make_readonly);
  auto rw = config_of(web1_with("\"" + kAlice + "\""));
  RightsChange widened = rights_after_reload(*rw, alice_on_web1(/*readonly=*/true));
  CHECK_FALSE(widened.make_readonly);
  CHECK_FALSE(widened.revoke);
}

TEST_CASE("a domain that no longer allows console withdraws its viewers", "[reload_plan]") {
  auto c = config_of(web1_with("\"" + kAlice + "\"", "[reboot]"));
  RightsChange r = rights_after_reload(*c, alice_on_web1());
  CHECK(r.withdraw_console);
  CHECK_FALSE(r.revoke);
}

TEST_CASE("start-up-only settings are reported, domain rights are not", "[reload_plan]") {
  auto before = config_of(web1_with("\"" + kAlice + "\""));
  auto same = config_of(web1_with("\"" + kBob + "\"", "[start]"));
  CHECK(restart_only_changes(*before, *same).empty());
  auto moved = config_of(web1_with("\"" + kAlice + "\""),
                         "listen: [\"127.0.0.1:2223\"]\nhost_keys: [/etc/xcg/other]\nhypervisor: sim\n");
  CHECK(restart_only_changes(*before, *moved) == std::vector<std::string>{"listen", "host_keys"});
  auto bigger = config_of("  web1:\n    memory: 1024\n    keys: [\"" + kAlice + "\"]\n");
  CHECK(restart_only_changes(*before, *bigger) == std::vector<std::string>{"domain web1 memory"});
}

namespace {

config::Config with_web(const config::Config& base, const std::string& listen, const std::string& cert) {
  config::Config c = base;
  c.web = config::WebSettings{};
  c.web->listen = {config::ListenAddress{"127.0.0.1", 0, false, listen}};
  c.web->tls_cert = cert;
  return c;
}

// A web session on web1, opened by a link that `issuer_key` minted ("" for xcg ctl or a panel).
SessionRecord web_session_on_web1(const std::string& issuer_key, bool readonly = false) {
  SessionRecord s;
  s.kind = SessionKind::web;
  s.authorized = true;
  s.domain = "web1";
  s.key_blob = issuer_key.empty() ? "" : config::parse_public_key(issuer_key)->blob;
  s.readonly = readonly;
  return s;
}

}  // namespace

TEST_CASE("web listeners wait for a restart; the TLS pair does not", "[reload_plan]") {
  auto base = config_of(web1_with("\"" + kAlice + "\""));
  auto web = with_web(*base, "127.0.0.1:443", "/a.crt");
  CHECK(restart_only_changes(web, with_web(*base, "127.0.0.1:443", "/b.crt")).empty());
  CHECK(restart_only_changes(web, with_web(*base, "127.0.0.1:8443", "/a.crt")) ==
        std::vector<std::string>{"web listen"});
  CHECK(restart_only_changes(*base, web) == std::vector<std::string>{"web listen"});
  CHECK(restart_only_changes(web, *base) == std::vector<std::string>{"web listen"});
}

TEST_CASE("a web session from a key's link lives on that key's rights", "[reload_plan]") {
  auto same = config_of(web1_with("\"" + kAlice + "\""));
  CHECK_FALSE(rights_after_reload(*same, web_session_on_web1(kAlice)).revoke);
  auto removed = config_of(web1_with("\"" + kBob + "\""));
  CHECK(rights_after_reload(*removed, web_session_on_web1(kAlice)).revoke);
  auto ro = config_of(web1_with("{key: \"" + kAlice + "\", readonly: true}"));
  RightsChange narrowed = rights_after_reload(*ro, web_session_on_web1(kAlice));
  CHECK(narrowed.make_readonly);
  CHECK_FALSE(narrowed.revoke);
}

TEST_CASE("a web session from xcg ctl or a panel ends with its domain or the domain's console",
          "[reload_plan]") {
  auto kept = config_of(web1_with("\"" + kBob + "\""));
  CHECK_FALSE(rights_after_reload(*kept, web_session_on_web1("")).revoke);
  auto no_console = config_of(web1_with("\"" + kBob + "\"", "[reboot]"));
  CHECK(rights_after_reload(*no_console, web_session_on_web1("")).revoke);
  auto gone = config_of("  db1:\n    keys: [\"" + kBob + "\"]\n");
  CHECK(rights_after_reload(*gone, web_session_on_web1("")).revoke);
}

TEST_CASE("a front's browser with no key behind it lives on the domain's console and the front",
          "[reload_plan]") {
  auto trusted = config_of(web1_with("\"" + kAlice + "\"") + "fronts: [\"" + kBob + "\"]\n");
  SessionRecord s = alice_on_web1();
  s.key_blob.clear();
  s.front_key_blob = config::parse_public_key(kBob)->blob;
  CHECK_FALSE(rights_after_reload(*trusted, s).revoke);
  auto no_console = config_of(web1_with("\"" + kAlice + "\"", "[reboot]") + "fronts: [\"" + kBob + "\"]\n");
  CHECK(rights_after_reload(*no_console, s).revoke);
  CHECK(rights_after_reload(*config_of(web1_with("\"" + kAlice + "\"")), s).revoke);
}
