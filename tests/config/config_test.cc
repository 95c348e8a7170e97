#include "config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "tests/config/samples.h"

namespace xcg::config {
namespace {

using namespace xcg::config::samples;

const std::string kErin =
    "ssh-rsa "
    "AAAAB3NzaC1yc2EAAAADAQABAAABAQC1MeT9ZK7G2wpkR0w0qHt3pGPrjTyol7r08/LIiOOvzJowrR88kOhTyGkk"
    "dG2sQrgvQ87aGNSQ43rT4Rfbb0EGm08MkpDETa6WPZ3sYzYBGvIWtQmtKza3TuuzkxFx0cVS0IM1Ta4NnLN59an3GusaR0"
    "In9f"
    "Lsdc595vr4qZbu+xq1bMOfJPhdz7YBnZmWPQ34DNGJajmnMhDub4ng/DnYTxYS+ThEXIARMUwfS/"
    "tZ9PxLZq+LOjfsX5b2E7NP"
    "idRdgP5cS8Y2VzUianZiOXpWYq9whUqcfp7ZRTEEXONsfMOg/hInv8dEdwUgXnHYK2HS/sY+GDKWUOcVxEwIC8v3 "
    "erin@rsa2048";
// Alice's key without its comment: the same key.
const std::string kAliceNoComment = kAlice.substr(0, kAlice.rfind(' '));

// The required fields, for tests about something else. Four lines.
const std::string kHead =
    "listen: [\"127.0.0.1:2222\"]\n"
    "host_keys: [/etc/xcg/host_key]\n"
    "hypervisor: sim\n"
    "domains:\n";

std::string blob_of(const std::string& line) {
  auto key = parse_public_key(line);
  REQUIRE(key);
  return key->blob;
}

std::string fingerprint_of(const std::string& line) {
  auto key = parse_public_key(line);
  REQUIRE(key);
  return key->fingerprint();
}

using Lines = std::vector<std::string>;

std::string join_lines(const Lines& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

TEST_CASE("action names round-trip") {
  for (Action a : kAllActions) CHECK(parse_action(action_name(a)) == a);
  CHECK(action_name(Action::shutdown) == "shutdown");
  CHECK(parse_action("Start") == std::nullopt);
  CHECK(parse_action("") == std::nullopt);
}

TEST_CASE("valid_domain_name") {
  CHECK(valid_domain_name("web1"));
  CHECK(valid_domain_name("a"));
  CHECK(valid_domain_name("0db.example-2_x"));
  CHECK(valid_domain_name(std::string(64, 'x')));
  CHECK_FALSE(valid_domain_name(std::string(65, 'x')));
  CHECK_FALSE(valid_domain_name(""));
  CHECK_FALSE(valid_domain_name("-web"));
  CHECK_FALSE(valid_domain_name(".web"));
  CHECK_FALSE(valid_domain_name("_web"));
  CHECK_FALSE(valid_domain_name("web 1"));
  CHECK_FALSE(valid_domain_name("web/1"));
  CHECK_FALSE(valid_domain_name("wéb"));
}

TEST_CASE("Location, Problem and ConfigError format as FILE:LINE:COLUMN") {
  Problem a{Location{"x.yaml", 3, 7}, "first"};
  Problem b{Location{"x.yaml", 9, 1}, "second"};
  CHECK(a.where.str() == "x.yaml:3:7");
  CHECK(a.str() == "x.yaml:3:7: first");
  ConfigError e({a, b});
  CHECK(std::string(e.what()) == "x.yaml:3:7: first\nx.yaml:9:1: second");
  CHECK(e.problems().size() == 2);
}

TEST_CASE("parse_listen_address") {
  auto v4 = parse_listen_address("127.0.0.1:2222");
  REQUIRE(v4);
  CHECK(v4->host == "127.0.0.1");
  CHECK(v4->port == 2222);
  CHECK_FALSE(v4->ipv6);
  CHECK(v4->text == "127.0.0.1:2222");

  auto v6 = parse_listen_address("[::1]:0");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 0);
  CHECK(v6->ipv6);

  auto any = parse_listen_address("[::]:65535");
  REQUIRE(any);
  CHECK(any->port == 65535);

  for (const char* bad : {"1.2.3:99", "localhost:22", "::1:22", "[::1]22", "[::1", "127.0.0.1",
                          "[127.0.0.1]:22", "[fe80::1%eth0]:22", ":22", "", "1.2.3.4.5:22"}) {
    INFO(bad);
    auto r = parse_listen_address(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().message ==
          "bad listen address '" + std::string(bad) + "': expected IPV4:PORT or [IPV6]:PORT");
  }
  for (const char* bad : {"1.2.3.4:65536", "1.2.3.4:", "[::1]:-1", "1.2.3.4:22a", "1.2.3.4:123456"}) {
    INFO(bad);
    auto r = parse_listen_address(bad);
    REQUIRE_FALSE(r);
    std::string text = bad;
    CHECK(r.error().message == "bad port '" + text.substr(text.rfind(':') + 1) + "' in listen address '" +
                                   text + "': expected 0 to 65535");
  }
}

TEST_CASE("a full config keeps every field") {
  const std::string text = join_lines({
      "listen: [\"127.0.0.1:2222\", \"[::1]:0\"]",
      "host_keys: [keys/host_ed25519, /abs/host_rsa]",
      "hypervisor: xen",
      "audit_log: logs/../audit.jsonl",
      "domains:",
      "  web1:",
      "    on_login: console",
      "    actions: [reboot, console, start]",
      "    memory: 16777216",
      "    vcpus: 512",
      "    keys:",
      "      - " + kAlice,  // line 12
      "      - " + kBob,
      "  db.2:",
      "    actions: []",
      "    memory: 1",
      "    keys:",
      "      - " + kErin,
      "sim:",
      "  guest_command: [\"/bin/sh\", \"-c\", \"cat\"]",
      "  autostart: false",
      "  shutdown_grace_ms: 0",
  });
  auto c = parse_config(text, "/etc/xcg/xcg.yaml");
  CHECK(c->path == "/etc/xcg/xcg.yaml");
  REQUIRE(c->listen.size() == 2);
  CHECK(c->listen[0].host == "127.0.0.1");
  CHECK(c->listen[0].port == 2222);
  CHECK(c->listen[1].host == "::1");
  CHECK(c->listen[1].ipv6);
  CHECK(c->host_keys == std::vector<std::string>{"/etc/xcg/keys/host_ed25519", "/abs/host_rsa"});
  CHECK(c->hypervisor == HypervisorKind::xen);
  CHECK(c->audit_log == "/etc/xcg/audit.jsonl");
  REQUIRE(c->domains.size() == 2);

  const Domain& web1 = c->domains.at("web1");
  CHECK(web1.name == "web1");
  CHECK(web1.on_login == OnLogin::console);
  CHECK(web1.actions == std::vector<Action>{Action::console, Action::start, Action::reboot});
  CHECK(web1.allows(Action::reboot));
  CHECK_FALSE(web1.allows(Action::destroy));
  CHECK_FALSE(web1.allows(Action::shutdown));
  CHECK(web1.memory_mib == 16777216);
  CHECK(web1.vcpus == 512);
  REQUIRE(web1.keys.size() == 2);
  CHECK(web1.keys[0].key.fingerprint() == kAliceFingerprint);
  CHECK(web1.keys[0].key.comment == "alice@laptop");
  CHECK(web1.keys[0].where.str() == "/etc/xcg/xcg.yaml:12:9");
  CHECK(web1.keys[1].key.type == "ecdsa-sha2-nistp256");
  CHECK(web1.keys[1].where.str() == "/etc/xcg/xcg.yaml:13:9");

  const Domain& db = c->domains.at("db.2");
  CHECK(db.on_login == OnLogin::menu);
  CHECK(db.actions.empty());
  CHECK_FALSE(db.allows(Action::console));
  CHECK(db.memory_mib == 1);
  CHECK(db.vcpus == 1);
  REQUIRE(db.keys.size() == 1);
  CHECK(db.keys[0].key.bits == 2048);

  CHECK(c->sim.guest_command == std::vector<std::string>{"/bin/sh", "-c", "cat"});
  CHECK_FALSE(c->sim.autostart);
  CHECK(c->sim.shutdown_grace_ms == 0);
}

TEST_CASE("defaults fill what the file leaves out") {
  auto c = parse_config(kHead + "  web1:\n  web2: {}\n  web3:\n    keys:\n", "xcg.yaml");
  CHECK(c->audit_log == "-");
  CHECK(c->hypervisor == HypervisorKind::sim);
  CHECK(c->host_keys == std::vector<std::string>{"/etc/xcg/host_key"});
  REQUIRE(c->domains.size() == 3);
  for (const auto& [name, d] : c->domains) {
    INFO(name);
    CHECK(d.name == name);
    CHECK(d.on_login == OnLogin::menu);
    CHECK(d.actions == std::vector<Action>(std::begin(kAllActions), std::end(kAllActions)));
    CHECK(d.allows(Action::sysrq));
    CHECK(d.memory_mib == 512);
    CHECK(d.vcpus == 1);
    CHECK(d.keys.empty());
  }
  CHECK(c->sim.guest_command.empty());
  CHECK(c->sim.autostart);
  CHECK(c->sim.shutdown_grace_ms == 5000);

  auto empty = parse_config(kHead + "  {}\n", "xcg.yaml");
  CHECK(empty->domains.empty());
  auto null_domains = parse_config(kHead, "xcg.yaml");
  CHECK(null_domains->domains.empty());
}

TEST_CASE("relative paths are relative to the config file's directory") {
  const std::string text =
      "listen: [\"127.0.0.1:0\"]\n"
      "host_keys: [host_key, ./k/../k2, /abs/k3]\n"
      "hypervisor: sim\n"
      "audit_log: audit.jsonl\n"
      "domains: {}\n";
  auto in_dir = parse_config(text, "conf/xcg.yaml");
  CHECK(in_dir->host_keys == std::vector<std::string>{"conf/host_key", "conf/k2", "/abs/k3"});
  CHECK(in_dir->audit_log == "conf/audit.jsonl");
  auto bare = parse_config(text, "xcg.yaml");
  CHECK(bare->host_keys == std::vector<std::string>{"host_key", "k2", "/abs/k3"});
}

TEST_CASE("domain_for_key finds the key's domain by blob") {
  auto c = parse_config(kHead + "  web1:\n    keys: [\"" + kAlice + "\", \"" + kBob +
                            "\"]\n"
                            "  db:\n    keys:\n      - " +
                            kErin + "\n  none: {}\n",
                        "t.yaml");
  const Domain* d = c->domain_for_key(blob_of(kAlice));
  REQUIRE(d != nullptr);
  CHECK(d->name == "web1");
  REQUIRE(c->domain_for_key(blob_of(kBob)) != nullptr);
  CHECK(c->domain_for_key(blob_of(kBob))->name == "web1");
  REQUIRE(c->domain_for_key(blob_of(kErin)) != nullptr);
  CHECK(c->domain_for_key(blob_of(kErin))->name == "db");

  std::string unknown = blob_of(kAlice);
  unknown.back() ^= 1;
  CHECK(c->domain_for_key(unknown) == nullptr);
  CHECK(c->domain_for_key("") == nullptr);
}

TEST_CASE("YAML syntax errors are reported at the parser's position") {
  CHECK(problems("listen: [\"127.0.0.1:22\"\nhost_keys: [a]\n") ==
        Lines{"t.yaml:2:1: YAML syntax error: end of sequence flow not found"});
  CHECK(problems("listen: a: b\n") == Lines{"t.yaml:1:10: YAML syntax error: illegal map value"});
  CHECK(problems("a: *nothing\n") ==
        Lines{"t.yaml:1:4: YAML syntax error: the referenced anchor is not defined"});
}

TEST_CASE("the top level must be one mapping") {
  CHECK(problems("- a\n- b\n") ==
        Lines{"t.yaml:1:1: expected a mapping of settings (listen, host_keys, ...) at the top"});
  CHECK(problems(kHead + "---\nlisten: []\n") ==
        Lines{"t.yaml:6:1: only one YAML document is allowed per file"});
}

TEST_CASE("missing required fields are reported at the mapping") {
  CHECK(problems("") == Lines{"t.yaml:1:1: missing required field 'listen'",
                              "t.yaml:1:1: missing required field 'host_keys'",
                              "t.yaml:1:1: missing required field 'hypervisor'",
                              "t.yaml:1:1: missing required field 'domains'"});
  CHECK(problems("# comment\n\nhypervisor: sim\nlisten: [\"1.2.3.4:5\"]\ndomains: {}\n") ==
        Lines{"t.yaml:3:1: missing required field 'host_keys'"});
}

TEST_CASE("unknown fields are reported at every level") {
  CHECK(
      problems(kHead + "  web1:\n    memroy: 4\nsim:\n  guest: [a]\nlisten_on: x\n") ==
      Lines{
          "t.yaml:6:5: unknown field 'memroy': expected actions, on_login, memory, vcpus, "
          "keys, config_file or console",
          "t.yaml:8:3: unknown field 'guest': expected guest_command, autostart, "
          "shutdown_grace_ms, toolstack or console_dir",
          "t.yaml:9:1: unknown field 'listen_on': expected listen, host_keys, hypervisor, "
          "audit_log, domains, sim, run_as, chroot_dir, limits, console, xen, web, cluster, fronts, metrics "
          "or include"});
}

TEST_CASE("duplicate mapping keys are reported at the second one") {
  CHECK(problems(kHead + "  web1: {}\n  web1: {}\nhypervisor: xen\n") ==
        Lines{"t.yaml:6:3: duplicate key 'web1' (first at t.yaml:5:3)",
              "t.yaml:7:1: duplicate key 'hypervisor' (first at t.yaml:3:1)"});
  CHECK(problems(kHead + "  web1: {vcpus: 1, vcpus: 2}\n") ==
        Lines{"t.yaml:5:20: duplicate key 'vcpus' (first at t.yaml:5:10)"});
}

TEST_CASE("values of the wrong type are reported at the value") {
  CHECK(problems("listen: \"127.0.0.1:22\"\nhost_keys: {a: b}\nhypervisor: [sim]\ndomains: []\n") ==
        Lines{"t.yaml:1:9: listen: expected a list of strings",
              "t.yaml:2:12: host_keys: expected a list of strings",
              "t.yaml:3:13: hypervisor: expected a string", "t.yaml:4:10: domains: expected a mapping"});
  // A missing value is reported at its key: YAML would place it at the next token.
  CHECK(problems("listen:\n\n\nhost_keys: [k]\nhypervisor: sim\ndomains: {}\n") ==
        Lines{"t.yaml:1:1: listen: expected a list of strings"});
  CHECK(problems(kHead + "  web1: [a]\n  web2:\n    actions: console\n    keys: {a: b}\n") ==
        Lines{"t.yaml:5:9: web1: expected a mapping", "t.yaml:7:14: actions: expected a list of strings",
              "t.yaml:8:11: keys: expected a list of keys, got a mapping"});
  CHECK(problems(kHead + "  web1:\n    keys:\n      - " + kAlice + "\n      - [x]\n") ==
        Lines{"t.yaml:8:9: keys: expected a key line or a mapping {key: ..., readonly: ...}, got "
              "a list"});
  CHECK(problems(kHead + "sim: 3\n") == Lines{"t.yaml:5:6: sim: expected a mapping"});
}

TEST_CASE("empty lists and strings are refused where a value is needed") {
  CHECK(problems("listen: []\nhost_keys: [\"\"]\nhypervisor: sim\naudit_log: \"\"\ndomains:\n"
                 "sim:\n  guest_command: []\n") ==
        Lines{"t.yaml:1:9: listen: must list at least one item",
              "t.yaml:2:13: host_keys: a path must not be empty", "t.yaml:4:12: audit_log: must not be empty",
              "t.yaml:7:18: guest_command: must list at least one item"});
  CHECK(problems("listen: [\"1.2.3.4:1\"]\nhost_keys: []\nhypervisor: sim\ndomains:\n") ==
        Lines{"t.yaml:2:12: host_keys: must list at least one item"});
}

TEST_CASE("bad listen addresses and ports are reported at the item") {
  CHECK(problems("listen: [\"127.0.0.1:22\", \"1.2.3:99\",\n  \"[::1]:70000\"]\n"
                 "host_keys: [k]\nhypervisor: sim\ndomains:\n") ==
        Lines{"t.yaml:1:26: bad listen address '1.2.3:99': expected IPV4:PORT or [IPV6]:PORT",
              "t.yaml:2:3: bad port '70000' in listen address '[::1]:70000': expected 0 to 65535"});
}

TEST_CASE("bad hypervisor, domain name, on_login and actions are reported") {
  CHECK(problems("listen: [\"1.2.3.4:1\"]\nhost_keys: [k]\nhypervisor: kvm\ndomains:\n"
                 "  \"web 1\": {}\n  -x: {}\n"
                 "  ok:\n    on_login: shell\n    actions: [start, stop, start]\n") ==
        Lines{"t.yaml:3:13: hypervisor: expected 'sim' or 'xen', got 'kvm'",
              "t.yaml:5:3: bad domain name 'web 1': expected 1 to 64 letters, digits, '_', '.' or '-', "
              "starting with a letter or digit",
              "t.yaml:6:3: bad domain name '-x': expected 1 to 64 letters, digits, '_', '.' or '-', "
              "starting with a letter or digit",
              "t.yaml:8:15: on_login: expected 'menu' or 'console', got 'shell'",
              "t.yaml:9:22: unknown action 'stop': expected console, start, shutdown, reboot, "
              "destroy or sysrq",
              "t.yaml:9:28: action 'start' is listed twice"});
}

TEST_CASE("on_login: console needs the console action") {
  CHECK(problems(kHead + "  web1:\n    on_login: console\n    actions: [start]\n") ==
        Lines{"t.yaml:6:15: on_login: console needs 'console' in this domain's actions"});
}

TEST_CASE("numbers and booleans out of range or of the wrong kind") {
  CHECK(problems(kHead + "  a:\n    memory: 0\n    vcpus: 513\n  b:\n    memory: \"512\"\n"
                         "    vcpus: two\n  c:\n    memory: 16777217\n    vcpus:\n"
                         "sim:\n  autostart: yes\n  shutdown_grace_ms: 600001\n") ==
        Lines{"t.yaml:6:13: memory: expected an integer from 1 to 16777216, got '0'",
              "t.yaml:7:12: vcpus: expected an integer from 1 to 512, got '513'",
              "t.yaml:9:13: memory: expected an integer from 1 to 16777216, got the quoted string "
              "\"512\"",
              "t.yaml:10:12: vcpus: expected an integer from 1 to 512, got 'two'",
              "t.yaml:12:13: memory: expected an integer from 1 to 16777216, got '16777217'",
              "t.yaml:13:5: vcpus: expected an integer from 1 to 512, got nothing",
              "t.yaml:15:14: autostart: expected true or false, got 'yes'",
              "t.yaml:16:22: shutdown_grace_ms: expected an integer from 0 to 600000, got '600001'"});
  CHECK(problems(kHead + "sim:\n  shutdown_grace_ms: -1\n  autostart: [true]\n") ==
        Lines{"t.yaml:6:22: shutdown_grace_ms: expected an integer from 0 to 600000, got '-1'",
              "t.yaml:7:14: autostart: expected true or false, got a list"});
}

TEST_CASE("malformed keys are reported at the key with the parser's reason") {
  CHECK(problems(kHead + "  web1:\n    keys:\n      - ssh-dss AAAA\n      - \"restrict " + kAlice +
                 "\"\n      - ssh-ed25519 AAAA!\n") ==
        Lines{"t.yaml:7:9: bad public key: unsupported key type 'ssh-dss': DSA keys are obsolete",
              "t.yaml:8:9: bad public key: key options are not supported (the line must start with "
              "the key type)",
              "t.yaml:9:9: bad public key: key data is not valid base64"});
}

TEST_CASE("a key listed twice is reported at the second place, naming the first") {
  SECTION("in two domains") {
    CHECK(problems(kHead + "  web1:\n    keys:\n      - " + kAlice +
                   "\n  web2:\n    keys:\n"
                   "      - " +
                   kBob + "\n      - " + kAlice + "\n") ==
          Lines{"t.yaml:11:9: key " + kAliceFingerprint +
                " (alice@laptop) is already listed for domain 'web1' at t.yaml:7:9"});
  }
  SECTION("twice in one domain, with a different comment or none") {
    CHECK(
        problems(kHead + "  web1:\n    keys:\n      - " + kAlice + "\n      - " + kAliceNoComment + "\n") ==
        Lines{"t.yaml:8:9: key " + kAliceFingerprint + " is already listed for domain 'web1' at t.yaml:7:9"});
  }
}

TEST_CASE("every problem in a file is reported, in file order") {
  // sim comes first in the file but is read last: the order is the file's, not the reader's.
  const std::string text = join_lines({
      "sim: {autostart: 1}", "hypervisor: qemu", "listen: [\"1.2.3.4:99999\"]", "domains:", "  web1:",
      "    keys: [\"" + kAlice + "\"]",  // line 6
      "    colour: blue", "  bad/name:",
      "    keys: [\"" + kAlice + "\"]",  // line 9
  });
  auto lines = problems(text);
  CHECK(lines == Lines{"t.yaml:1:1: missing required field 'host_keys'",
                       "t.yaml:1:18: autostart: expected true or false, got '1'",
                       "t.yaml:2:13: hypervisor: expected 'sim' or 'xen', got 'qemu'",
                       "t.yaml:3:10: bad port '99999' in listen address '1.2.3.4:99999': expected 0 to 65535",
                       "t.yaml:7:5: unknown field 'colour': expected actions, on_login, memory, vcpus, keys, "
                       "config_file or console",
                       "t.yaml:8:3: bad domain name 'bad/name': expected 1 to 64 letters, digits, '_', "
                       "'.' or '-', starting with a letter or digit",
                       "t.yaml:9:12: key " + kAliceFingerprint +
                           " (alice@laptop) is already listed for domain 'web1' at t.yaml:6:12"});
  try {
    parse_config(text, "t.yaml");
    FAIL("no ConfigError");
  } catch (const ConfigError& e) {
    std::string joined;
    for (const auto& l : lines) joined += (joined.empty() ? "" : "\n") + l;
    CHECK(std::string(e.what()) == joined);
  }
}

// --- run_as, chroot_dir and limits ---

// A file with the required fields and `line` as line 6.
std::string with_line(const std::string& line) { return kHead + "  {}\n" + line + "\n"; }

// A file whose limits hold one field, written "  FIELD: VALUE" on line 7.
std::string with_limit(const std::string& field, const std::string& value) {
  return kHead + "  {}\nlimits:\n  " + field + ": " + value + "\n";
}

// Where with_limit's value starts: line 7, after "  FIELD: ".
std::string at_limit_value(const std::string& field) {
  return "t.yaml:7:" + std::to_string(field.size() + 5) + ": ";
}

Limits limits_with(const std::string& field, const std::string& value) {
  auto text = with_limit(field, value);
  INFO(text);
  REQUIRE(problems(text).empty());
  return parse_config(text, "t.yaml")->limits;
}

void check_limits_are_defaults(const Limits& l) {
  CHECK(l.login_grace_s == 30);
  CHECK(l.max_auth_tries == 6);
  CHECK(l.max_key_offers == 32);
  CHECK(l.startups_begin == 10);
  CHECK(l.startups_rate == 30);
  CHECK(l.startups_full == 100);
  CHECK(l.max_startups_per_source == 10);
  CHECK(l.source_prefix_v4 == 32);
  CHECK(l.source_prefix_v6 == 64);
  CHECK(l.max_sessions_per_domain == 32);
  CHECK(l.max_actions == 8);
  CHECK(l.idle_timeout_s == 0);
  CHECK(l.spare_sessions == 2);
}

TEST_CASE("run_as, chroot_dir and limits default when left out") {
  for (const std::string& rest : {std::string(), std::string("limits:\n"), std::string("limits: {}\n")}) {
    INFO(rest);
    auto c = parse_config(kHead + "  {}\n" + rest, "t.yaml");
    CHECK(c->run_as == "xcg");
    CHECK(c->chroot_dir == "/run/xcg/empty");
    check_limits_are_defaults(c->limits);
  }
}

TEST_CASE("each limit left out keeps its default while others are set") {
  const Limits defaults;
  auto only_grace = limits_with("login_grace", "5");
  CHECK(only_grace.login_grace_s == 5);
  CHECK(only_grace.max_auth_tries == defaults.max_auth_tries);
  CHECK(only_grace.startups_full == defaults.startups_full);
  CHECK(only_grace.idle_timeout_s == defaults.idle_timeout_s);
  auto only_tries = limits_with("max_auth_tries", "2");
  CHECK(only_tries.max_auth_tries == 2);
  CHECK(only_tries.login_grace_s == defaults.login_grace_s);
  CHECK(only_tries.max_sessions_per_domain == defaults.max_sessions_per_domain);
  auto only_idle = limits_with("idle_timeout", "1h");
  CHECK(only_idle.idle_timeout_s == 3600);
  CHECK(only_idle.startups_begin == defaults.startups_begin);
  CHECK(only_idle.startups_rate == defaults.startups_rate);
  CHECK(only_idle.max_startups_per_source == defaults.max_startups_per_source);
}

TEST_CASE("a full confinement example keeps every setting") {
  auto c = parse_config(join_lines({
                            "listen: [\"127.0.0.1:2222\"]",
                            "host_keys: [/etc/xcg/host_key]",
                            "hypervisor: sim",
                            "domains: {}",
                            "run_as: xcg-session_2",
                            "chroot_dir: /var/lib/xcg//empty/./",
                            "limits:",
                            "  login_grace: 2m",
                            "  max_auth_tries: 3",
                            "  max_startups: \"5:50:20\"",
                            "  max_startups_per_source: 4",
                            "  max_sessions_per_domain: 8",
                            "  idle_timeout: 1h",
                        }),
                        "t.yaml");
  CHECK(c->run_as == "xcg-session_2");
  CHECK(c->chroot_dir == "/var/lib/xcg/empty");
  CHECK(c->limits.login_grace_s == 120);
  CHECK(c->limits.max_auth_tries == 3);
  CHECK(c->limits.startups_begin == 5);
  CHECK(c->limits.startups_rate == 50);
  CHECK(c->limits.startups_full == 20);
  CHECK(c->limits.max_startups_per_source == 4);
  CHECK(c->limits.max_sessions_per_domain == 8);
  CHECK(c->limits.idle_timeout_s == 3600);
}

TEST_CASE("run_as accepts portable user names") {
  for (const auto& name : Lines{"xcg", "_xcg", "x", "xcg-gw_2", "xcg-", std::string(32, 'u')}) {
    INFO(name);
    auto text = with_line("run_as: " + name);
    REQUIRE(problems(text).empty());
    CHECK(parse_config(text, "t.yaml")->run_as == name);
  }
}

TEST_CASE("run_as refuses root, bad user names and non-strings") {
  CHECK(problems(with_line("run_as: root")) ==
        Lines{"t.yaml:6:9: run_as: must not be root: sessions would keep full privileges"});
  CHECK(problems(with_line("run_as: \"root\"")) ==
        Lines{"t.yaml:6:9: run_as: must not be root: sessions would keep full privileges"});
  for (const auto& bad : Lines{"Xcg", "ROOT", "1xcg", "0", "-xcg", "xcg.gw", "xc g", "xcg$", "x\\u00e9",
                               std::string(33, 'u')}) {
    INFO(bad);
    auto yaml = "\"" + bad + "\"";
    auto lines = problems(with_line("run_as: " + yaml));
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].starts_with("t.yaml:6:9: run_as: bad user name '"));
    CHECK(
        lines[0].ends_with("': expected 1 to 32 lower-case letters, digits, '_' or '-', "
                           "starting with a letter or '_'"));
  }
  CHECK(problems(with_line("run_as: Xcg")) ==
        Lines{"t.yaml:6:9: run_as: bad user name 'Xcg': expected 1 to 32 lower-case letters, "
              "digits, '_' or '-', starting with a letter or '_'"});
  CHECK(problems(with_line("run_as: \"\"")) ==
        Lines{"t.yaml:6:9: run_as: bad user name '': expected 1 to 32 lower-case letters, "
              "digits, '_' or '-', starting with a letter or '_'"});
  CHECK(problems(with_line("run_as: [xcg]")) == Lines{"t.yaml:6:9: run_as: expected a string"});
  CHECK(problems(with_line("run_as:")) == Lines{"t.yaml:6:1: run_as: expected a string"});
}

TEST_CASE("chroot_dir is kept in a normal form") {
  for (auto [written, kept] :
       {std::pair{"/run/xcg/empty", "/run/xcg/empty"}, std::pair{"/var/empty/", "/var/empty"},
        std::pair{"//a//b", "/a/b"}, std::pair{"/./a/./b/.", "/a/b"}, std::pair{"/a...b/.x", "/a...b/.x"}}) {
    INFO(written);
    auto text = with_line(std::string("chroot_dir: \"") + written + "\"");
    REQUIRE(problems(text).empty());
    CHECK(parse_config(text, "t.yaml")->chroot_dir == kept);
  }
}

TEST_CASE("chroot_dir must be absolute, without '..', and not the root") {
  CHECK(problems(with_line("chroot_dir: run/xcg/empty")) ==
        Lines{"t.yaml:6:13: chroot_dir: must be an absolute path, got 'run/xcg/empty'"});
  CHECK(problems(with_line("chroot_dir: ./empty")) ==
        Lines{"t.yaml:6:13: chroot_dir: must be an absolute path, got './empty'"});
  CHECK(problems(with_line("chroot_dir: ~/empty")) ==
        Lines{"t.yaml:6:13: chroot_dir: must be an absolute path, got '~/empty'"});
  CHECK(problems(with_line("chroot_dir: /run/../etc")) ==
        Lines{"t.yaml:6:13: chroot_dir: must not contain '..', got '/run/../etc'"});
  CHECK(problems(with_line("chroot_dir: /var/empty/..")) ==
        Lines{"t.yaml:6:13: chroot_dir: must not contain '..', got '/var/empty/..'"});
  for (const std::string root : {"/", "//", "///", "/./", "/."}) {
    INFO(root);
    CHECK(problems(with_line("chroot_dir: \"" + root + "\"")) ==
          Lines{"t.yaml:6:13: chroot_dir: must not be the root directory, got '" + root +
                "': sessions would see the whole file system"});
  }
  CHECK(problems(with_line("chroot_dir: \"/\\0/run/xcg\"")) ==
        Lines{"t.yaml:6:13: chroot_dir: must not contain a NUL character"});
  CHECK(problems(with_line("chroot_dir: \"\"")) == Lines{"t.yaml:6:13: chroot_dir: must not be empty"});
  CHECK(problems(with_line("chroot_dir: {a: b}")) == Lines{"t.yaml:6:13: chroot_dir: expected a string"});
}

TEST_CASE("limits must be a mapping of known fields") {
  CHECK(problems(with_line("limits: 5")) == Lines{"t.yaml:6:9: limits: expected a mapping"});
  CHECK(problems(with_line("limits: [login_grace]")) == Lines{"t.yaml:6:9: limits: expected a mapping"});
  CHECK(
      problems(kHead + "  {}\nlimits:\n  login_grace: 10\n  max_startup: 5\n  Max_auth_tries: 3\n") ==
      Lines{
          "t.yaml:8:3: unknown field 'max_startup': expected login_grace, max_auth_tries, max_key_offers, "
          "max_startups, max_startups_per_source, source_prefix_v4, source_prefix_v6, "
          "max_sessions_per_domain, max_actions, idle_timeout or spare_sessions",
          "t.yaml:9:3: unknown field 'Max_auth_tries': expected login_grace, max_auth_tries, max_key_offers, "
          "max_startups, max_startups_per_source, source_prefix_v4, source_prefix_v6, "
          "max_sessions_per_domain, max_actions, idle_timeout or spare_sessions"});
  CHECK(problems(kHead + "  {}\nlimits:\n  max_auth_tries: 3\n  max_auth_tries: 4\n") ==
        Lines{"t.yaml:8:3: duplicate key 'max_auth_tries' (first at t.yaml:7:3)"});
}

TEST_CASE("durations: seconds, or a number with unit s, m or h") {
  for (auto [written, seconds] : {std::pair{"1", 1u}, std::pair{"\"30\"", 30u}, std::pair{"30s", 30u},
                                  std::pair{"\"45s\"", 45u}, std::pair{"2m", 120u}, std::pair{"60m", 3600u},
                                  std::pair{"1h", 3600u}, std::pair{"3600", 3600u}, std::pair{"0001", 1u}}) {
    INFO(written);
    CHECK(limits_with("login_grace", written).login_grace_s == seconds);
  }
  for (auto [written, seconds] :
       {std::pair{"0", 0u}, std::pair{"\"0\"", 0u}, std::pair{"off", 0u}, std::pair{"\"off\"", 0u},
        std::pair{"0s", 0u}, std::pair{"0h", 0u}, std::pair{"1", 1u}, std::pair{"15m", 900u},
        std::pair{"168h", 604800u}, std::pair{"604800", 604800u}}) {
    INFO(written);
    CHECK(limits_with("idle_timeout", written).idle_timeout_s == seconds);
  }
}

TEST_CASE("login_grace: malformed or out of range") {
  const std::string at = at_limit_value("login_grace");
  for (const std::string bad :
       {"30x", "1.5m", "-5", "+5", "\"30 s\"", "1d", "30S", "s", "m30", "1m30s", "off", "1e3", "\"\""}) {
    INFO(bad);
    auto shown = bad.starts_with('"') ? bad.substr(1, bad.size() - 2) : bad;
    CHECK(problems(with_limit("login_grace", bad)) ==
          Lines{at +
                "login_grace: expected seconds, or a number with unit s, m or h (30, 30s, "
                "2m, 1h), got '" +
                shown + "'"});
  }
  CHECK(problems(with_limit("login_grace", "[30]")) ==
        Lines{at + "login_grace: expected seconds, or a number with unit s, m or h (30, 30s, 2m, "
                   "1h), got a list"});
  CHECK(problems(with_limit("login_grace", "")) ==
        Lines{"t.yaml:7:3: login_grace: expected seconds, or a number with unit s, m or h (30, "
              "30s, 2m, 1h), got nothing"});
  CHECK(problems(with_limit("login_grace", "0")) ==
        Lines{at + "login_grace: expected a duration from 1 to 3600 seconds, got '0'"});
  CHECK(problems(with_limit("login_grace", "0s")) ==
        Lines{at + "login_grace: expected a duration from 1 to 3600 seconds, got '0s' (0 seconds)"});
  CHECK(problems(with_limit("login_grace", "3601")) ==
        Lines{at + "login_grace: expected a duration from 1 to 3600 seconds, got '3601'"});
  CHECK(problems(with_limit("login_grace", "61m")) ==
        Lines{at + "login_grace: expected a duration from 1 to 3600 seconds, got '61m' (3660 "
                   "seconds)"});
  CHECK(problems(with_limit("login_grace", "\"2h\"")) ==
        Lines{at + "login_grace: expected a duration from 1 to 3600 seconds, got '2h' (7200 "
                   "seconds)"});
  CHECK(problems(with_limit("login_grace", "999999999999h")) ==
        Lines{at + "login_grace: expected a duration from 1 to 3600 seconds, got '999999999999h' "
                   "(3599999999996400 seconds)"});
}

TEST_CASE("idle_timeout: malformed or out of range") {
  const std::string at = at_limit_value("idle_timeout");
  for (const std::string bad : {"none", "on", "OFF", "false", "-1", "7d", "10y"}) {
    INFO(bad);
    CHECK(problems(with_limit("idle_timeout", bad)) ==
          Lines{at +
                "idle_timeout: expected off, or seconds, or a number with unit s, m or h (30, "
                "30s, 2m, 1h), got '" +
                bad + "'"});
  }
  CHECK(problems(with_limit("idle_timeout", "{a: 1}")) ==
        Lines{at + "idle_timeout: expected off, or seconds, or a number with unit s, m or h (30, "
                   "30s, 2m, 1h), got a mapping"});
  CHECK(problems(with_limit("idle_timeout", "604801")) ==
        Lines{at + "idle_timeout: expected a duration from 0 to 604800 seconds, got '604801'"});
  CHECK(problems(with_limit("idle_timeout", "169h")) ==
        Lines{at + "idle_timeout: expected a duration from 0 to 604800 seconds, got '169h' "
                   "(608400 seconds)"});
}

TEST_CASE("max_auth_tries: an integer from 1 to 100") {
  CHECK(limits_with("max_auth_tries", "1").max_auth_tries == 1);
  CHECK(limits_with("max_auth_tries", "100").max_auth_tries == 100);
  const std::string at = at_limit_value("max_auth_tries");
  CHECK(problems(with_limit("max_auth_tries", "0")) ==
        Lines{at + "max_auth_tries: expected an integer from 1 to 100, got '0'"});
  CHECK(problems(with_limit("max_auth_tries", "101")) ==
        Lines{at + "max_auth_tries: expected an integer from 1 to 100, got '101'"});
  CHECK(problems(with_limit("max_auth_tries", "-1")) ==
        Lines{at + "max_auth_tries: expected an integer from 1 to 100, got '-1'"});
  CHECK(problems(with_limit("max_auth_tries", "\"6\"")) ==
        Lines{at + "max_auth_tries: expected an integer from 1 to 100, got the quoted string "
                   "\"6\""});
  CHECK(problems(with_limit("max_auth_tries", "six")) ==
        Lines{at + "max_auth_tries: expected an integer from 1 to 100, got 'six'"});
  CHECK(problems(with_limit("max_auth_tries", "[6]")) ==
        Lines{at + "max_auth_tries: expected an integer from 1 to 100, got a list"});
}

TEST_CASE("max_key_offers: an integer from 1 to 1000, apart from max_auth_tries") {
  auto l = limits_with("max_key_offers", "1000");
  CHECK(l.max_key_offers == 1000);
  CHECK(l.max_auth_tries == 6);
  CHECK(limits_with("max_key_offers", "1").max_key_offers == 1);
  const std::string at = at_limit_value("max_key_offers");
  CHECK(problems(with_limit("max_key_offers", "0")) ==
        Lines{at + "max_key_offers: expected an integer from 1 to 1000, got '0'"});
  CHECK(problems(with_limit("max_key_offers", "1001")) ==
        Lines{at + "max_key_offers: expected an integer from 1 to 1000, got '1001'"});
}

TEST_CASE("max_startups_per_source and max_sessions_per_domain: 1 to 10000") {
  for (const std::string field : {"max_startups_per_source", "max_sessions_per_domain"}) {
    INFO(field);
    auto read = [&](const std::string& value) {
      auto l = limits_with(field, value);
      return field == "max_startups_per_source" ? l.max_startups_per_source : l.max_sessions_per_domain;
    };
    CHECK(read("1") == 1);
    CHECK(read("10000") == 10000);
    CHECK(read("77") == 77);
    const std::string at = at_limit_value(field);
    for (const std::string bad : {"0", "10001", "-3", "1.5", "many"}) {
      INFO(bad);
      CHECK(problems(with_limit(field, bad)) ==
            Lines{at + field + ": expected an integer from 1 to 10000, got '" + bad + "'"});
    }
    CHECK(problems(with_limit(field, "")) ==
          Lines{"t.yaml:7:3: " + field + ": expected an integer from 1 to 10000, got nothing"});
  }
}

TEST_CASE("source_prefix_v4: 1 to 32, source_prefix_v6: 1 to 128") {
  struct Case {
    std::string field;
    unsigned max;
  };
  for (const auto& [field, max] : {Case{"source_prefix_v4", 32}, Case{"source_prefix_v6", 128}}) {
    INFO(field);
    auto read = [&, &field = field](const std::string& value) {
      auto l = limits_with(field, value);
      return field == "source_prefix_v4" ? l.source_prefix_v4 : l.source_prefix_v6;
    };
    CHECK(read("1") == 1);
    CHECK(read("24") == 24);
    CHECK(read(std::to_string(max)) == max);
    const std::string at = at_limit_value(field);
    for (const std::string& bad : {std::string("0"), std::to_string(max + 1), std::string("-8"),
                                   std::string("/24"), std::string("many")}) {
      INFO(bad);
      CHECK(problems(with_limit(field, bad)) == Lines{at + field + ": expected an integer from 1 to " +
                                                      std::to_string(max) + ", got '" + bad + "'"});
    }
  }
  // Each left out keeps its default.
  CHECK(limits_with("source_prefix_v4", "24").source_prefix_v6 == 64);
  CHECK(limits_with("source_prefix_v6", "48").source_prefix_v4 == 32);
}

TEST_CASE("max_actions: 1 to 64 toolstack runs at once") {
  CHECK(limits_with("max_actions", "1").max_actions == 1);
  CHECK(limits_with("max_actions", "64").max_actions == 64);
  CHECK(limits_with("max_actions", "12").max_actions == 12);
  const std::string at = at_limit_value("max_actions");
  for (const std::string bad : {"0", "65", "-1", "2.5", "lots"}) {
    INFO(bad);
    CHECK(problems(with_limit("max_actions", bad)) ==
          Lines{at + "max_actions: expected an integer from 1 to 64, got '" + bad + "'"});
  }
}

TEST_CASE("spare_sessions: 0 to 64 sessions parked ahead of time") {
  CHECK(limits_with("spare_sessions", "0").spare_sessions == 0);
  CHECK(limits_with("spare_sessions", "64").spare_sessions == 64);
  CHECK(limits_with("spare_sessions", "5").spare_sessions == 5);
  const std::string at = at_limit_value("spare_sessions");
  for (const std::string bad : {"65", "-1", "2.5", "many"}) {
    INFO(bad);
    CHECK(problems(with_limit("spare_sessions", bad)) ==
          Lines{at + "spare_sessions: expected an integer from 0 to 64, got '" + bad + "'"});
  }
}

TEST_CASE("max_startups: START:RATE:FULL, or N meaning N:100:N") {
  struct Case {
    const char* written;
    unsigned begin, rate, full;
  };
  for (auto [written, begin, rate, full] :
       {Case{"\"10:30:100\"", 10, 30, 100}, Case{"10:30:100", 10, 30, 100}, Case{"\"5:50:20\"", 5, 50, 20},
        Case{"1:1:1", 1, 1, 1}, Case{"\"10000:100:10000\"", 10000, 100, 10000}, Case{"7", 7, 100, 7},
        Case{"\"7\"", 7, 100, 7}, Case{"10000", 10000, 100, 10000}, Case{"\"3:100:3\"", 3, 100, 3}}) {
    INFO(written);
    auto l = limits_with("max_startups", written);
    CHECK(l.startups_begin == begin);
    CHECK(l.startups_rate == rate);
    CHECK(l.startups_full == full);
  }
}

TEST_CASE("max_startups: malformed or out of range") {
  const std::string at = at_limit_value("max_startups") + "max_startups: ";
  const std::string form = "expected START:RATE:FULL (like 10:30:100) or a number, got ";
  for (const std::string bad : {"10:30", "10:30:100:5", "10::100", ":30:100", "10:30:", "a:b:c", "-1:30:100",
                                "10:-30:100", "10:30%:100", "10 : 30 : 100", "1.5", "", "off"}) {
    INFO(bad);
    CHECK(problems(with_limit("max_startups", "\"" + bad + "\"")) == Lines{at + form + "'" + bad + "'"});
  }
  CHECK(problems(with_limit("max_startups", "[10, 30, 100]")) == Lines{at + form + "a list"});
  CHECK(problems(with_limit("max_startups", "")) == Lines{"t.yaml:7:3: max_startups: " + form + "nothing"});

  auto one = [&](const std::string& value) { return problems(with_limit("max_startups", value)); };
  CHECK(one("\"10:0:100\"") == Lines{at + "RATE must be a percentage from 1 to 100, got 0"});
  CHECK(one("\"10:101:100\"") == Lines{at + "RATE must be a percentage from 1 to 100, got 101"});
  CHECK(one("\"10:30:5\"") == Lines{at + "FULL (5) must not be less than START (10)"});
  CHECK(one("\"10:30:9\"") == Lines{at + "FULL (9) must not be less than START (10)"});
  CHECK(one("\"0:30:100\"") == Lines{at + "START must be from 1 to 10000, got 0"});
  CHECK(one("\"10001:30:20000\"") == Lines{at + "START must be from 1 to 10000, got 10001"});
  CHECK(one("\"10:30:10001\"") == Lines{at + "FULL must be at most 10000, got 10001"});
  CHECK(one("0") == Lines{at + "expected a number from 1 to 10000, got 0"});
  CHECK(one("\"10001\"") == Lines{at + "expected a number from 1 to 10000, got 10001"});
}

TEST_CASE("confinement problems are all reported, in file order, with their positions") {
  CHECK(problems(join_lines({
            "limits:",
            "  max_startups: \"10:30\"",
            "  login_grace: 30x",
            "  colour: blue",
            "  idle_timeout: 8d",
            "listen: [\"127.0.0.1:2222\"]",
            "run_as: root",
            "host_keys: [k]",
            "chroot_dir: var/empty",
            "hypervisor: sim",
            "domains: {}",
        })) ==
        Lines{"t.yaml:2:17: max_startups: expected START:RATE:FULL (like 10:30:100) or a number, "
              "got '10:30'",
              "t.yaml:3:16: login_grace: expected seconds, or a number with unit s, m or h (30, "
              "30s, 2m, 1h), got '30x'",
              "t.yaml:4:3: unknown field 'colour': expected login_grace, max_auth_tries, max_key_offers, "
              "max_startups, max_startups_per_source, source_prefix_v4, source_prefix_v6, "
              "max_sessions_per_domain, max_actions, idle_timeout or spare_sessions",
              "t.yaml:5:17: idle_timeout: expected off, or seconds, or a number with unit s, m or "
              "h (30, 30s, 2m, 1h), got '8d'",
              "t.yaml:7:9: run_as: must not be root: sessions would keep full privileges",
              "t.yaml:9:13: chroot_dir: must be an absolute path, got 'var/empty'"});
}

// --- sysrq and read-only keys ---

TEST_CASE("sysrq is an action, and in the default set") {
  CHECK(action_name(Action::sysrq) == "sysrq");
  CHECK(parse_action("sysrq") == Action::sysrq);
  CHECK(parse_action("SysRq") == std::nullopt);
  auto c = parse_config(kHead +
                            "  web1: {}\n  web2:\n    actions: [sysrq, console]\n"
                            "  web3:\n    actions: [start]\n",
                        "t.yaml");
  CHECK(c->domains.at("web1").actions == std::vector<Action>{Action::console, Action::start, Action::shutdown,
                                                             Action::reboot, Action::destroy, Action::sysrq});
  CHECK(c->domains.at("web2").actions == std::vector<Action>{Action::console, Action::sysrq});
  CHECK_FALSE(c->domains.at("web3").allows(Action::sysrq));
  CHECK(problems(kHead + "  web1:\n    actions: [sysrq, sysrq, sysreq]\n") ==
        Lines{"t.yaml:6:22: action 'sysrq' is listed twice",
              "t.yaml:6:29: unknown action 'sysreq': expected console, start, shutdown, reboot, "
              "destroy or sysrq"});
}

TEST_CASE("keys: key lines and {key, readonly} mappings, mixed") {
  auto c = parse_config(kHead + join_lines({
                                    "  web1:", "    keys:",
                                    "      - " + kAlice,  // line 7
                                    "      - {key: \"" + kBob + "\", readonly: true}", "  web2:", "    keys:",
                                    "      - key: " + kErin,  // line 11
                                }),
                        "t.yaml");
  const Domain& web1 = c->domains.at("web1");
  REQUIRE(web1.keys.size() == 2);
  CHECK(web1.keys[0].key.comment == "alice@laptop");
  CHECK_FALSE(web1.keys[0].readonly);
  CHECK(web1.keys[0].where.str() == "t.yaml:7:9");
  CHECK(web1.keys[1].key.comment == "bob@ecdsa256");
  CHECK(web1.keys[1].readonly);
  CHECK(web1.keys[1].where.str() == "t.yaml:8:15");
  const Domain& web2 = c->domains.at("web2");
  REQUIRE(web2.keys.size() == 1);
  CHECK(web2.keys[0].key.bits == 2048);
  CHECK_FALSE(web2.keys[0].readonly);  // the default
  CHECK(web2.keys[0].where.str() == "t.yaml:11:14");
  REQUIRE(c->domain_for_key(blob_of(kBob)) != nullptr);
  CHECK(c->domain_for_key(blob_of(kBob))->name == "web1");
  REQUIRE(c->domain_for_key(blob_of(kErin)) != nullptr);
  CHECK(c->domain_for_key(blob_of(kErin))->name == "web2");

  auto explicit_false = parse_config(
      kHead + "  web1:\n    keys:\n      - key: " + kAlice + "\n        readonly: false\n", "t.yaml");
  REQUIRE(explicit_false->domains.at("web1").keys.size() == 1);
  CHECK_FALSE(explicit_false->domains.at("web1").keys[0].readonly);
}

TEST_CASE("key mappings: key is required, readonly is a bool, nothing else") {
  CHECK(problems(kHead + join_lines({
                             "  web1:",
                             "    keys:",
                             "      - {readonly: true}",
                             "      - readonly: true",
                             "      - key: " + kAlice,
                             "        readonly: yes",
                             "        comment: laptop",
                             "      - key: [x]",
                             "      - key:",
                             "      - key: ssh-ed25519 AAAA!",
                             "      - {key: \"" + kBob + "\", readonly: [true]}",
                         })) ==
        Lines{"t.yaml:7:9: missing required field 'key'", "t.yaml:8:9: missing required field 'key'",
              "t.yaml:10:19: readonly: expected true or false, got 'yes'",
              "t.yaml:11:9: unknown field 'comment': expected key or readonly",
              "t.yaml:12:14: key: expected a string", "t.yaml:13:9: key: expected a string",
              "t.yaml:14:14: bad public key: key data is not valid base64",
              "t.yaml:15:" + std::to_string(29 + kBob.size()) +
                  ": readonly: expected true or false, got a list"});
}

TEST_CASE("a key listed twice is found across both forms") {
  SECTION("a line, then a mapping in another domain") {
    CHECK(problems(kHead + "  web1:\n    keys:\n      - " + kAlice +
                   "\n  web2:\n    keys:\n      - {key: \"" + kAliceNoComment + "\", readonly: true}\n") ==
          Lines{"t.yaml:10:15: key " + kAliceFingerprint +
                " is already listed for domain 'web1' at t.yaml:7:9"});
  }
  SECTION("a mapping, then a line in the same domain") {
    CHECK(problems(kHead + "  web1:\n    keys:\n      - key: " + kBob + "\n        readonly: true\n      - " +
                   kBob + "\n") ==
          Lines{"t.yaml:9:9: key " + fingerprint_of(kBob) +
                " (bob@ecdsa256) is already listed for domain 'web1' at t.yaml:7:14"});
  }
}

// --- the console section ---

// A file whose console section holds one field, written "  FIELD: VALUE" on line 7.
std::string with_console(const std::string& field, const std::string& value) {
  return kHead + "  {}\nconsole:\n  " + field + ": " + value + "\n";
}

ConsoleSettings console_of(const std::string& text) {
  INFO(text);
  REQUIRE(problems(text).empty());
  return parse_config(text, "conf/xcg.yaml")->console;
}

ConsoleSettings console_with(const std::string& field, const std::string& value) {
  return console_of(with_console(field, value));
}

TEST_CASE("console settings default when left out") {
  for (const std::string& rest : {std::string(), std::string("console:\n"), std::string("console: {}\n")}) {
    INFO(rest);
    auto c = parse_config(kHead + "  {}\n" + rest, "t.yaml")->console;
    CHECK(c.scrollback_bytes == 256 * 1024);
    CHECK(c.replay_bytes == 64 * 1024);
    CHECK(c.log_dir == "/var/log/xcg/console");
    CHECK(c.log_max_bytes == 1024 * 1024);
  }
}

TEST_CASE("console sizes: bytes, or a number with a binary unit") {
  for (auto [written, bytes] :
       {std::pair{"4096", 4096u}, std::pair{"\"4096\"", 4096u}, std::pair{"4096B", 4096u},
        std::pair{"4KiB", 4096u}, std::pair{"4K", 4096u}, std::pair{"\"64KiB\"", 65536u},
        std::pair{"0064K", 65536u}, std::pair{"1M", 1048576u}, std::pair{"1MiB", 1048576u},
        std::pair{"64MiB", 67108864u}, std::pair{"67108864", 67108864u}}) {
    INFO(written);
    auto c = console_with("scrollback", written);
    CHECK(c.scrollback_bytes == bytes);
    CHECK(c.log_max_bytes == ConsoleSettings{}.log_max_bytes);
  }
  for (auto [written, bytes] :
       {std::pair{"0", 0u}, std::pair{"0B", 0u}, std::pair{"\"0K\"", 0u}, std::pair{"1", 1u},
        std::pair{"100000", 100000u}, std::pair{"256KiB", 262144u}}) {
    INFO(written);
    auto c = console_with("replay", written);
    CHECK(c.replay_bytes == bytes);
    CHECK(c.scrollback_bytes == ConsoleSettings{}.scrollback_bytes);
  }
  for (auto [written, bytes] :
       {std::pair{"4K", 4096u}, std::pair{"10MiB", 10485760u}, std::pair{"1G", 1073741824u},
        std::pair{"1GiB", 1073741824u}, std::pair{"1024M", 1073741824u}}) {
    INFO(written);
    CHECK(console_with("log_max", written).log_max_bytes == bytes);
  }
}

TEST_CASE("console: replay may equal scrollback, and its default follows a small scrollback") {
  auto equal = console_of(kHead + "  {}\nconsole:\n  replay: 1MiB\n  scrollback: 1M\n");
  CHECK(equal.scrollback_bytes == 1024 * 1024);
  CHECK(equal.replay_bytes == 1024 * 1024);
  auto small = console_with("scrollback", "16KiB");
  CHECK(small.scrollback_bytes == 16 * 1024);
  CHECK(small.replay_bytes == 16 * 1024);
  auto large = console_with("scrollback", "4MiB");
  CHECK(large.replay_bytes == 64 * 1024);
}

TEST_CASE("console: log_dir is a path resolved like others, or off") {
  CHECK(console_with("log_dir", "/srv/xcg/log").log_dir == "/srv/xcg/log");
  CHECK(console_with("log_dir", "logs/./console").log_dir == "conf/logs/console");
  CHECK(console_with("log_dir", "./off").log_dir == "conf/off");
  for (const std::string off : {"off", "\"off\"", "\"\"", "''"}) {
    INFO(off);
    CHECK(console_with("log_dir", off).log_dir.empty());
  }
}

TEST_CASE("console: a full example keeps every setting") {
  auto c = console_of(kHead + join_lines({
                                  "  {}",
                                  "console:",
                                  "  scrollback: 2MiB",
                                  "  replay: 100000",
                                  "  log_dir: /var/log/gw",
                                  "  log_max: 8M",
                              }));
  CHECK(c.scrollback_bytes == 2 * 1024 * 1024);
  CHECK(c.replay_bytes == 100000);
  CHECK(c.log_dir == "/var/log/gw");
  CHECK(c.log_max_bytes == 8 * 1024 * 1024);
}

TEST_CASE("console must be a mapping of known fields") {
  CHECK(problems(with_line("console: 64KiB")) == Lines{"t.yaml:6:10: console: expected a mapping"});
  CHECK(problems(with_line("console: [scrollback]")) == Lines{"t.yaml:6:10: console: expected a mapping"});
  CHECK(problems(kHead + "  {}\nconsole:\n  scrollbak: 1M\n  log_max: 1M\n  log_max: 2M\n") ==
        Lines{"t.yaml:7:3: unknown field 'scrollbak': expected scrollback, replay, log_dir or "
              "log_max",
              "t.yaml:9:3: duplicate key 'log_max' (first at t.yaml:8:3)"});
}

// Where with_console's value starts: line 7, after "  FIELD: ".
std::string at_console_value(const std::string& field) {
  return "t.yaml:7:" + std::to_string(field.size() + 5) + ": ";
}

TEST_CASE("console sizes: malformed") {
  for (const std::string field : {"scrollback", "replay", "log_max"}) {
    INFO(field);
    const std::string form = field +
                             ": expected bytes, or a number with unit B, KiB, MiB, GiB, K, M or "
                             "G (65536, 64KiB, 1MiB), got ";
    for (const std::string bad : {"64KB", "64kib", "64k", "\"64 KiB\"", "1.5M", "-1", "+1", "K", "KiB", "B",
                                  "1T", "1KiBB", "1e6", "off", "\"\""}) {
      INFO(bad);
      auto shown = bad.starts_with('"') ? bad.substr(1, bad.size() - 2) : bad;
      CHECK(problems(with_console(field, bad)) == Lines{at_console_value(field) + form + "'" + shown + "'"});
    }
    CHECK(problems(with_console(field, "[1M]")) == Lines{at_console_value(field) + form + "a list"});
    CHECK(problems(with_console(field, "")) == Lines{"t.yaml:7:3: " + form + "nothing"});
  }
}

TEST_CASE("console sizes: out of range") {
  auto one = [](const std::string& field, const std::string& value) {
    return problems(with_console(field, value));
  };
  const std::string scrollback =
      at_console_value("scrollback") +
      "scrollback: expected a size from 4KiB to 64MiB (4096 to 67108864 bytes), got ";
  CHECK(one("scrollback", "4095") == Lines{scrollback + "'4095'"});
  CHECK(one("scrollback", "0") == Lines{scrollback + "'0'"});
  CHECK(one("scrollback", "3K") == Lines{scrollback + "'3K' (3072 bytes)"});
  CHECK(one("scrollback", "65MiB") == Lines{scrollback + "'65MiB' (68157440 bytes)"});
  CHECK(one("scrollback", "67108865") == Lines{scrollback + "'67108865'"});
  // Too large to count in 64 bits: no byte count.
  CHECK(one("scrollback", "999999999999G") == Lines{scrollback + "'999999999999G'"});
  const std::string replay =
      at_console_value("replay") + "replay: expected a size from 0 to 64MiB (0 to 67108864 bytes), got ";
  CHECK(one("replay", "65M") == Lines{replay + "'65M' (68157440 bytes)"});
  const std::string log_max = at_console_value("log_max") +
                              "log_max: expected a size from 4KiB to 1GiB (4096 to 1073741824 bytes), got ";
  CHECK(one("log_max", "4095B") == Lines{log_max + "'4095B' (4095 bytes)"});
  CHECK(one("log_max", "1025M") == Lines{log_max + "'1025M' (1074790400 bytes)"});
  CHECK(one("log_max", "2G") == Lines{log_max + "'2G' (2147483648 bytes)"});
}

TEST_CASE("console: replay must not be more than scrollback, reported at replay") {
  CHECK(problems(kHead + "  {}\nconsole:\n  scrollback: 64KiB\n  replay: 65KiB\n") ==
        Lines{"t.yaml:8:11: replay: must not be more than scrollback (64KiB), got '65KiB' "
              "(66560 bytes)"});
  CHECK(problems(kHead + "  {}\nconsole:\n  replay: 5000\n  scrollback: 4096\n") ==
        Lines{"t.yaml:7:11: replay: must not be more than scrollback (4KiB), got '5000'"});
  CHECK(problems(kHead + "  {}\nconsole:\n  scrollback: 5000\n  replay: 5001\n") ==
        Lines{"t.yaml:8:11: replay: must not be more than scrollback (5000 bytes), got '5001'"});
  CHECK(problems(with_console("replay", "257KiB")) ==
        Lines{"t.yaml:7:11: replay: must not be more than scrollback (256KiB, the default), got "
              "'257KiB' (263168 bytes)"});
  // A bad scrollback is the one problem: replay is not compared with it.
  CHECK(problems(kHead + "  {}\nconsole:\n  scrollback: 1K\n  replay: 64KiB\n") ==
        Lines{"t.yaml:7:15: scrollback: expected a size from 4KiB to 64MiB (4096 to 67108864 "
              "bytes), got '1K' (1024 bytes)"});
}

TEST_CASE("console: log_dir must be a string without NUL") {
  CHECK(problems(with_console("log_dir", "[a, b]")) ==
        Lines{"t.yaml:7:12: log_dir: expected a directory path, or off, got a list"});
  CHECK(problems(with_console("log_dir", "")) ==
        Lines{"t.yaml:7:3: log_dir: expected a directory path, or off, got nothing"});
  CHECK(problems(with_console("log_dir", "\"/var/log\\0/xcg\"")) ==
        Lines{"t.yaml:7:12: log_dir: must not contain a NUL character"});
}

// A scratch directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "xcg_config_test.XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

  std::string write(const std::string& name, const std::string& text) const {
    auto file = (path_ / name).string();
    UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    REQUIRE(fd);
    REQUIRE(::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    return file;
  }

 private:
  std::filesystem::path path_;
};

TEST_CASE("load_config reads a file and resolves paths against its directory") {
  TempDir dir;
  auto file = dir.write("xcg.yaml",
                        "listen: [\"127.0.0.1:0\"]\nhost_keys: [host_key]\n"
                        "hypervisor: sim\naudit_log: audit.jsonl\ndomains:\n"
                        "  web1:\n    keys: [\"" +
                            kAlice + "\"]\n");
  auto c = load_config(file);
  CHECK(c->path == file);
  CHECK(c->host_keys == std::vector<std::string>{(dir.path() / "host_key").string()});
  CHECK(c->audit_log == (dir.path() / "audit.jsonl").string());
  REQUIRE(c->domain_for_key(blob_of(kAlice)) != nullptr);
  CHECK(c->domain_for_key(blob_of(kAlice))->name == "web1");
}

TEST_CASE("load_config reports problems with the file's path") {
  TempDir dir;
  auto file = dir.write("bad.yaml", kHead + "  web1:\n    vcpus: 0\n");
  try {
    load_config(file);
    FAIL("no ConfigError");
  } catch (const ConfigError& e) {
    REQUIRE(e.problems().size() == 1);
    CHECK(e.problems()[0].str() == file + ":6:12: vcpus: expected an integer from 1 to 512, got '0'");
  }
}

TEST_CASE("load_config of a missing or unreadable file is one problem at 1:1") {
  TempDir dir;
  auto missing = (dir.path() / "nope.yaml").string();
  try {
    load_config(missing);
    FAIL("no ConfigError");
  } catch (const ConfigError& e) {
    REQUIRE(e.problems().size() == 1);
    CHECK(e.problems()[0].str() == missing + ":1:1: cannot open: No such file or directory");
  }
  try {
    load_config(dir.path().string());
    FAIL("no ConfigError");
  } catch (const ConfigError& e) {
    REQUIRE(e.problems().size() == 1);
    CHECK(e.problems()[0].str() == dir.path().string() + ":1:1: not a regular file");
  }
}

TEST_CASE("load_config refuses a FIFO at once instead of waiting for a writer") {
  TempDir dir;
  auto fifo = (dir.path() / "xcg.yaml").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // Without a regular-file check the open would block here for ever (no writer).
  try {
    load_config(fifo);
    FAIL("no ConfigError");
  } catch (const ConfigError& e) {
    REQUIRE(e.problems().size() == 1);
    CHECK(e.problems()[0].str() == fifo + ":1:1: not a regular file");
  }
}

TEST_CASE("sim: toolstack is an absolute path, none by default") {
  CHECK(parse_config(kHead + "  web1:\n", "xcg.yaml")->sim.toolstack.empty());
  auto c = parse_config(kHead + "  web1:\nsim:\n  toolstack: /opt/test//fake-xl\n", "xcg.yaml");
  CHECK(c->sim.toolstack == "/opt/test/fake-xl");
  CHECK(problems(kHead + "  web1:\nsim:\n  toolstack: fake-xl\n") ==
        Lines{"t.yaml:7:14: toolstack: must be an absolute path, got 'fake-xl'"});
  CHECK(problems(kHead + "  web1:\nsim:\n  toolstack: \"\"\n") ==
        Lines{"t.yaml:7:14: toolstack: must not be empty"});
}

TEST_CASE("xen: settings and per-domain Xen fields default when left out") {
  auto c = parse_config(kHead + "  web1:\n  db.2: {}\n", "xcg.yaml");
  CHECK(c->xen.toolstack == "/usr/sbin/xl");
  CHECK(c->xen.timeout_s == 30);
  CHECK(c->xen.lock_dir == "/var/lock");
  CHECK(c->domains.at("web1").config_file == "/etc/xen/web1.cfg");
  CHECK(c->domains.at("db.2").config_file == "/etc/xen/db.2.cfg");
  CHECK(c->domains.at("web1").xen_console == XenConsole::automatic);
}

TEST_CASE("xen: a full Xen setup keeps every setting") {
  const std::string text = join_lines({
      "listen: [\"127.0.0.1:2222\"]",
      "host_keys: [/etc/xcg/host_key]",
      "hypervisor: xen",
      "xen:",
      "  toolstack: /usr/lib/xen-4.17/bin/xl",
      "  timeout: 2m",
      "  lock_dir: /run/lock/",
      "domains:",
      "  web1:",
      "    config_file: guests/web1.cfg",
      "    console: pv",
      "  win1:",
      "    config_file: /srv/xen/win1.cfg",
      "    console: serial",
      "  any:",
      "    console: auto",
  });
  auto c = parse_config(text, "/etc/xcg/xcg.yaml");
  CHECK(c->hypervisor == HypervisorKind::xen);
  CHECK(c->xen.toolstack == "/usr/lib/xen-4.17/bin/xl");
  CHECK(c->xen.timeout_s == 120);
  CHECK(c->xen.lock_dir == "/run/lock");
  CHECK(c->domains.at("web1").config_file == "/etc/xcg/guests/web1.cfg");  // like every path
  CHECK(c->domains.at("web1").xen_console == XenConsole::pv);
  CHECK(c->domains.at("win1").config_file == "/srv/xen/win1.cfg");
  CHECK(c->domains.at("win1").xen_console == XenConsole::serial);
  CHECK(c->domains.at("any").xen_console == XenConsole::automatic);
}

TEST_CASE("xen: bad settings are reported where they are") {
  CHECK(problems(kHead + "  web1:\n    console: hvc0\n    config_file: \"\"\n") ==
        Lines{"t.yaml:6:14: console: expected 'pv', 'serial' or 'auto', got 'hvc0'",
              "t.yaml:7:18: config_file: must not be empty"});
  CHECK(problems(kHead + "xen:\n  toolstack: xl\n  timeout: 0\n  lock_dir: [a]\n  pool: x\n") ==
        Lines{"t.yaml:6:14: toolstack: must be an absolute path, got 'xl'",
              "t.yaml:7:12: timeout: expected a duration from 1 to 600 seconds, got '0'",
              "t.yaml:8:13: lock_dir: expected a string",
              "t.yaml:9:3: unknown field 'pool': expected toolstack, timeout or lock_dir"});
  CHECK(problems(kHead + "xen:\n  timeout: 11m\n") ==
        Lines{"t.yaml:6:12: timeout: expected a duration from 1 to 600 seconds, got '11m' (660 seconds)"});
  CHECK(problems(kHead + "xen: [xl]\n") == Lines{"t.yaml:5:6: xen: expected a mapping"});
}

}  // namespace
}  // namespace xcg::config
