// The schema's tables are the one list of fields: each field they name is read into the
// Config, and a field they do not name is refused with the ones they do.
#include "config/schema.h"

#include <fcntl.h>
#include <pty.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "base/text.h"
#include "base/unique_fd.h"
#include "config/config.h"
#include "tests/config/samples.h"

namespace xcg::config {
namespace {

using namespace xcg::config::samples;

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

// From `ssh-keygen`, as in config_test.cc.

using TopFields = std::vector<std::pair<std::string, std::string>>;  // name, flow YAML

// The required fields: one domain with Alice's key.
TopFields base_fields() {
  return {{"listen", "['127.0.0.1:2222']"},
          {"host_keys", "[/etc/xcg/host_key]"},
          {"hypervisor", "sim"},
          {"domains", "{web1: {keys: ['" + kAlice + "']}}"}};
}

// The base config with the top-level field `name` set (or replaced) to `value`, one per line.
std::string config_with(const std::string& name, const std::string& value) {
  auto fields = base_fields();
  auto same = [&](const auto& f) { return f.first == name; };
  auto it = std::find_if(fields.begin(), fields.end(), same);
  if (it == fields.end()) fields.emplace_back(name, value);
  else it->second = value;
  std::string out;
  for (const auto& [n, v] : fields) out += n + ": " + v + "\n";
  return out;
}

std::string numbers(std::initializer_list<unsigned long long> values) {
  std::string out;
  for (auto v : values) out += std::to_string(v) + " ";
  return out;
}

std::string dump_domain(const Domain& d) {
  std::string out = fmt::format("{} {} {} {} {} {} [", d.name, int(d.on_login), d.memory_mib, d.vcpus,
                                d.config_file, int(d.xen_console));
  for (Action a : d.actions) out += std::string(action_name(a)) + " ";
  for (const auto& k : d.keys) out += fmt::format("] [{} {}", k.key.blob, k.readonly);
  return out + "]\n";
}

std::string dump_web(const std::optional<WebSettings>& web) {
  if (!web) return "no web\n";
  std::string out;
  for (const auto& a : web->listen) out += a.text + ",";
  for (const auto& a : web->plain_listen) out += a.text + ",";
  return out + fmt::format("|{} {} {} {} {} {}\n", web->tls_cert, web->tls_key, web->public_url,
                           web->link_ttl_s, web->panel_secret_file, join(web->trusted_proxies, ","));
}

std::string dump_cluster(const Config& c) {
  std::string out;
  for (const auto& f : c.fronts) out += f.key.blob + ",";
  if (!c.cluster) return out + "no cluster\n";
  const auto& k = *c.cluster;
  return out + fmt::format("|{} {} {} {} {} {} {} {} {}\n", int(k.role), k.node, join(k.endpoints, ","),
                           k.ca_file, k.cert_file, k.key_file, k.prefix, k.lease_ttl_s, k.advertise);
}

std::string dump_metrics(const std::optional<MetricsSettings>& metrics) {
  if (!metrics) return "no metrics\n";
  std::string out;
  for (const auto& a : metrics->listen) out += a.text + ",";
  return out + "\n";
}

// Every setting of the Config, as text: two configs that read differently dump differently.
std::string dump(const Config& c) {
  const auto& l = c.limits;
  std::string out =
      fmt::format("{}|{}|{}|{}|{}|{}|{}|", c.run_as, c.chroot_dir, int(c.hypervisor), c.audit_log,
                  join(c.host_keys, ","), join(c.source_files, ","), join(c.watch_dirs, ","));
  for (const auto& a : c.listen) out += a.text + ",";
  out += numbers({l.login_grace_s, l.max_auth_tries, l.max_key_offers, l.startups_begin, l.startups_rate,
                  l.startups_full, l.max_startups_per_source, l.source_prefix_v4, l.source_prefix_v6,
                  l.max_sessions_per_domain, l.max_actions, l.idle_timeout_s, l.spare_sessions});
  out += numbers({c.console.scrollback_bytes, c.console.replay_bytes, c.console.log_max_bytes});
  out += c.console.log_dir + "|" + join(c.sim.guest_command, ",") + "|";
  out += fmt::format("{} {} {} {}|", c.sim.autostart, c.sim.shutdown_grace_ms, c.sim.toolstack,
                     c.sim.console_dir);
  out += fmt::format("{} {} {}\n", c.xen.toolstack, c.xen.timeout_s, c.xen.lock_dir);
  for (const auto& [name, d] : c.domains) out += dump_domain(d);
  return out + dump_web(c.web) + dump_cluster(c) + dump_metrics(c.metrics);
}

// A sample that is a whole file rather than one top-level field.
const std::string kWholeFile = "*";

// For each field of the schema: the top-level field to set, and a value that sets the field
// to something other than its default.
std::map<std::string, std::pair<std::string, std::string>> samples(const std::string& include,
                                                                   const std::string& console_dir) {
  auto domain = [](const std::string& body) { return "{web1: {" + body + "}}"; };
  auto cluster = [](const std::string& more) { return "{endpoints: ['http://127.0.0.1:2379']" + more + "}"; };
  auto web = [](const std::string& more) {
    return "{listen: ['127.0.0.1:8443'], public_url: 'https://console.example'" + more + "}";
  };
  return {
      {"listen", {"listen", "['[::1]:22']"}},
      {"host_keys", {"host_keys", "[/etc/xcg/other_key]"}},
      {"hypervisor", {"hypervisor", "xen"}},
      {"audit_log", {"audit_log", "/var/log/xcg/audit.jsonl"}},
      {"domains", {"domains", "{db: {}}"}},
      {"domains.actions", {"domains", domain("actions: [console]")}},
      {"domains.on_login", {"domains", domain("on_login: console")}},
      {"domains.memory", {"domains", domain("memory: 1024")}},
      {"domains.vcpus", {"domains", domain("vcpus: 2")}},
      {"domains.keys", {"domains", domain("keys: ['" + kBob + "']")}},
      {"domains.keys.key", {"domains", domain("keys: [{key: '" + kBob + "'}]")}},
      {"domains.keys.readonly", {"domains", domain("keys: [{key: '" + kAlice + "', readonly: true}]")}},
      {"domains.config_file", {"domains", domain("config_file: /srv/web1.cfg")}},
      {"domains.console", {"domains", domain("console: serial")}},
      {"sim", {"sim", "{autostart: false}"}},
      {"sim.guest_command", {"sim", "{guest_command: [/bin/cat]}"}},
      {"sim.autostart", {"sim", "{autostart: false}"}},
      {"sim.shutdown_grace_ms", {"sim", "{shutdown_grace_ms: 100}"}},
      {"sim.toolstack", {"sim", "{toolstack: /usr/local/bin/fake-xl}"}},
      {"sim.console_dir", {"sim", "{console_dir: " + console_dir + "}"}},
      {"run_as", {"run_as", "nobody"}},
      {"chroot_dir", {"chroot_dir", "/var/empty"}},
      {"limits", {"limits", "{max_actions: 2}"}},
      {"limits.login_grace", {"limits", "{login_grace: 1m}"}},
      {"limits.max_auth_tries", {"limits", "{max_auth_tries: 3}"}},
      {"limits.max_key_offers", {"limits", "{max_key_offers: 5}"}},
      {"limits.max_startups", {"limits", "{max_startups: '5:50:20'}"}},
      {"limits.max_startups_per_source", {"limits", "{max_startups_per_source: 2}"}},
      {"limits.source_prefix_v4", {"limits", "{source_prefix_v4: 24}"}},
      {"limits.source_prefix_v6", {"limits", "{source_prefix_v6: 48}"}},
      {"limits.max_sessions_per_domain", {"limits", "{max_sessions_per_domain: 4}"}},
      {"limits.max_actions", {"limits", "{max_actions: 2}"}},
      {"limits.idle_timeout", {"limits", "{idle_timeout: 1h}"}},
      {"limits.spare_sessions", {"limits", "{spare_sessions: 5}"}},
      {"console", {"console", "{log_dir: off}"}},
      {"console.scrollback", {"console", "{scrollback: 1MiB}"}},
      {"console.replay", {"console", "{replay: 4KiB}"}},
      {"console.log_dir", {"console", "{log_dir: /srv/console}"}},
      {"console.log_max", {"console", "{log_max: 8MiB}"}},
      {"xen", {"xen", "{timeout: 5}"}},
      {"xen.toolstack", {"xen", "{toolstack: /usr/local/sbin/xl}"}},
      {"xen.timeout", {"xen", "{timeout: 5}"}},
      {"xen.lock_dir", {"xen", "{lock_dir: /run/lock}"}},
      {"web", {"web", web("")}},
      {"web.listen", {"web", web("")}},
      {"web.public_url", {"web", web("")}},
      {"web.tls_cert", {"web", web(", tls_cert: /etc/xcg/web.crt")}},
      {"web.tls_key", {"web", web(", tls_key: /etc/xcg/web.key")}},
      {"web.link_ttl", {"web", web(", link_ttl: 2m")}},
      {"web.panel_secret_file", {"web", web(", panel_secret_file: /etc/xcg/panel.secret")}},
      {"web.trusted_proxies", {"web", web(", trusted_proxies: [10.0.0.0/8]")}},
      {"include", {"include", "['" + include + "']"}},
      {"cluster", {"cluster", cluster("")}},
      // A front has no domains: a whole file of its own.
      {"cluster.role",
       {kWholeFile,
        "listen: ['127.0.0.1:2222']\nhost_keys: [/etc/xcg/host_key]\n"
        "cluster: {role: front, endpoints: ['http://127.0.0.1:2379']}\n"}},
      {"cluster.node", {"cluster", cluster(", node: dom0-b")}},
      {"cluster.endpoints", {"cluster", cluster("")}},
      {"cluster.ca_file", {"cluster", cluster(", ca_file: /etc/xcg/ca.pem")}},
      {"cluster.cert_file", {"cluster", cluster(", cert_file: /c.pem, key_file: /k.pem")}},
      {"cluster.key_file", {"cluster", cluster(", cert_file: /c.pem, key_file: /k.pem")}},
      {"cluster.prefix", {"cluster", cluster(", prefix: /other/")}},
      {"cluster.lease_ttl", {"cluster", cluster(", lease_ttl: 9")}},
      {"cluster.advertise", {"cluster", cluster(", advertise: 'dom0-b.example:22'")}},
      {"fronts", {"fronts", "['" + kBob + "']"}},
      {"metrics", {"metrics", "{listen: ['127.0.0.1:9464']}"}},
      {"metrics.listen", {"metrics", "{listen: ['unix:/run/xcg/metrics.sock']}"}},
  };
}

std::string write_file(const fs::path& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  REQUIRE(fd);
  REQUIRE(::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  return path.string();
}

// The allowed names of one section ("limits."), without the prefix, from the schema.
std::vector<std::string> fields_of(const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& name : schema_fields()) {
    if (!name.starts_with(prefix)) continue;
    auto rest = name.substr(prefix.size());
    if (rest.find('.') == std::string::npos) out.push_back(rest);
  }
  return out;
}

TEST_CASE("every field in the schema is read into the config", "[schema]") {
  std::string dir = (fs::temp_directory_path() / "xcg_schema_test.XXXXXX").string();
  REQUIRE(::mkdtemp(dir.data()) != nullptr);
  auto include = write_file(fs::path(dir) / "more.yaml", "domains: {db: {}}\n");
  // sim.console_dir is checked at load: web1's console must be a pty slave there.
  int master = -1, slave = -1;
  char pts[128] = {};
  REQUIRE(::openpty(&master, &slave, pts, nullptr, nullptr) == 0);
  UniqueFd master_fd(master), slave_fd(slave);
  fs::create_directory(fs::path(dir) / "consoles");
  fs::create_symlink(pts, fs::path(dir) / "consoles" / "web1");
  auto cases = samples(include, dir + "/consoles");
  auto base = dump(*parse_config(config_with("hypervisor", "sim"), dir + "/xcg.yaml"));
  for (const auto& name : schema_fields()) {
    INFO(name);
    auto sample = cases.find(name);
    REQUIRE(sample != cases.end());  // a new field needs a sample here
    const auto& [top, value] = sample->second;
    auto config = parse_config(top == kWholeFile ? value : config_with(top, value), dir + "/xcg.yaml");
    CHECK(dump(*config) != base);
    cases.erase(sample);
  }
  for (const auto& [name, sample] : cases) FAIL_CHECK("not in the schema: " << name);
  fs::remove_all(dir);
}

TEST_CASE("an unknown field is refused with the fields its section allows", "[schema]") {
  auto lines = problems(config_with("limits", "{max_startup: 5}"));
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], StartsWith("t.yaml:5:10: unknown field 'max_startup': expected "));
  auto allowed = fields_of("limits.");
  CHECK(allowed.size() == 11);
  for (const auto& name : allowed) CHECK_THAT(lines[0], Contains(name));
  CHECK(
      problems(config_with("xen", "{tools: /x}")) ==
      std::vector<std::string>{"t.yaml:5:7: unknown field 'tools': expected toolstack, timeout or lock_dir"});
}

TEST_CASE("the top level lists only its own fields as allowed", "[schema]") {
  auto lines = problems(config_with("listen_on", "x"));
  REQUIRE(lines.size() == 1);
  for (const auto& name : fields_of("")) CHECK_THAT(lines[0], Contains(name));
  CHECK_THAT(lines[0], !Contains("max_actions") && !Contains("readonly"));
}

TEST_CASE("a domain's and a key's unknown fields name theirs", "[schema]") {
  CHECK(problems(config_with("domains", "{web1: {memroy: 5}}")) ==
        std::vector<std::string>{"t.yaml:4:18: unknown field 'memroy': expected actions, "
                                 "on_login, memory, vcpus, keys, config_file or console"});
  CHECK(problems(config_with("domains", "{web1: {keys: [{key: '" + kAlice + "', ro: true}]}}")) ==
        std::vector<std::string>{"t.yaml:4:" + std::to_string(35 + kAlice.size()) +
                                 ": unknown field 'ro': expected key or readonly"});
}

}  // namespace
}  // namespace xcg::config
