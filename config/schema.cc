// What a config file may hold: one table per section. A row's place in its table is the order
// its field is read in.
#include "config/schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

#include "config/cluster_section.h"
#include "config/includes.h"
#include "config/metrics_section.h"
#include "config/sim_section.h"
#include "config/table.h"
#include "config/values.h"
#include "config/web_section.h"

namespace xcg::config {
namespace {

constexpr long long kMaxLoginGrace = 3600;
constexpr long long kMaxIdleTimeout = 7 * 24 * 3600;
constexpr long long kMaxActions = 64;        // root toolstack processes at once
constexpr long long kMaxSpareSessions = 64;  // parked xcg-session processes
constexpr long long kMaxToolstackTimeout = 600;
constexpr unsigned long long kMinScrollback = 4 * kKiB, kMaxScrollback = 64 * kMiB;
constexpr unsigned long long kMinLogMax = 4 * kKiB, kMaxLogMax = kGiB;

// --- a domain's keys ---

// A key written as a mapping {key: LINE, readonly: BOOL}.
struct KeyItem {
  YAML::Node line;
  bool readonly = false;
};

bool read_key_line(Loader& in, const Field& f, KeyItem& k) {
  auto line = read_value(in, f, Text{});
  if (line) k.line = f.value;
  return line.has_value();
}

const Table<KeyItem>& key_table() {
  static const Table<KeyItem> table{{
      required(custom("key", read_key_line)),
      field("readonly", Bool{}, &KeyItem::readonly),
  }};
  return table;
}

// An item of the list `keys`.
void read_key(Loader& in, const std::string& keys, const YAML::Node& item, Domain& d) {
  if (item.IsScalar()) return in.add_key(item, false, d);
  if (!item.IsMap()) {
    in.report(item.Mark(), fmt::format("{}: expected a key line or a mapping {{key: ..., "
                                       "readonly: ...}}, got {}",
                                       keys, describe(item)));
    return;
  }
  KeyItem k;
  auto read = read_table(in, in.entries(item), item, key_table(), k);
  if (read.ok("key")) in.add_key(k.line, k.readonly, d);
}

// Each item is an OpenSSH key line, or a mapping {key: LINE, readonly: BOOL}.
bool read_keys(Loader& in, const Field& f, Domain& d) {
  if (f.value.IsNull()) return true;  // "keys:" with none yet
  if (!f.value.IsSequence()) {
    in.report(mark_of(f), fmt::format("{}: expected a list of keys, got {}", name_of(f), describe(f.value)));
    return false;
  }
  for (const auto& item : f.value) read_key(in, name_of(f), item, d);
  return true;
}

// --- a domain ---

std::string action_choices() {
  std::vector<std::string> names;
  for (Action a : kAllActions) names.emplace_back(action_name(a));
  return one_of(names);
}

// Kept in canonical order, whatever order they are listed in.
bool read_actions(Loader& in, const Field& f, Domain& d) {
  auto items = read_strings(in, f, false);
  if (!items) return false;
  bool listed[std::size(kAllActions)] = {};
  size_t problems = 0;
  for (const auto& [text, node] : *items) {
    auto action = parse_action(text);
    if (!action)
      in.report(node.Mark(), fmt::format("unknown action '{}': expected {}", text, action_choices()));
    else if (listed[size_t(*action)])
      in.report(node.Mark(), fmt::format("action '{}' is listed twice", text));
    problems += !action || listed[size_t(*action)];
    if (action) listed[size_t(*action)] = true;
  }
  d.actions.clear();
  for (Action a : kAllActions)
    if (listed[size_t(a)]) d.actions.push_back(a);
  return problems == 0;
}

void check_on_login(Loader& in, const Outcome& read, Domain& d) {
  auto on_login = read.ok("on_login");
  if (on_login && d.on_login == OnLogin::console && !d.allows(Action::console))
    in.report(mark_of(*on_login), fmt::format("{}: console needs 'console' in this domain's "
                                              "actions",
                                              name_of(*on_login)));
}

const Table<Domain>& domain_table() {
  static const Table<Domain> table{
      {
          custom("actions", read_actions),
          field("on_login", Choice<OnLogin>{{{"menu", OnLogin::menu}, {"console", OnLogin::console}}},
                &Domain::on_login),
          field("memory", Integer{1, 16 * 1024 * 1024}, &Domain::memory_mib),
          field("vcpus", Integer{1, 512}, &Domain::vcpus),
          custom("keys", read_keys, key_table),
          field("config_file", Path{}, &Domain::config_file),
          field(
              "console",
              Choice<XenConsole>{
                  {{"pv", XenConsole::pv}, {"serial", XenConsole::serial}, {"auto", XenConsole::automatic}}},
              &Domain::xen_console),
      },
      check_on_login};
  return table;
}

void read_domain(Loader& in, const Field& f, Domain& d) {
  d.config_file = "/etc/xen/" + d.name + ".cfg";
  auto entries = in.entries(f);
  if (!entries) return;
  d.actions.assign(std::begin(kAllActions), std::end(kAllActions));
  read_table(in, *entries, f.value, domain_table(), d);
}

void add_domain(Loader& in, const Field& f, Config& c) {
  const auto& name = name_of(f);
  if (!valid_domain_name(name))
    in.report(f.key.Mark(), fmt::format("bad domain name '{}': expected 1 to 64 letters, digits, '_', '.' or "
                                        "'-', starting with a letter or digit",
                                        name));
  Domain domain{.name = name, .where = in.where(f.key.Mark())};
  read_domain(in, f, domain);
  // Within one file, Loader::entries has already reported a second definition.
  auto first = c.domains.find(name);
  if (first != c.domains.end())
    in.report(f.key.Mark(),
              fmt::format("domain '{}' is already defined at {}", name, first->second.where.str()));
  else c.domains.emplace(name, std::move(domain));
}

bool read_domains(Loader& in, const Field& f, Config& c) {
  auto entries = in.entries(f);
  if (!entries) return false;
  for (const auto& [name, field] : *entries) add_domain(in, field, c);
  return true;
}

// --- the other sections ---

void store_startups(Limits& l, const Startups& s) {
  l.startups_begin = s.begin;
  l.startups_rate = s.rate;
  l.startups_full = s.full;
}

const Table<Limits>& limits_table() {
  static const Table<Limits> table{{
      field("login_grace", Duration{1, kMaxLoginGrace}, &Limits::login_grace_s),
      field("max_auth_tries", Integer{1, 100}, &Limits::max_auth_tries),
      field("max_key_offers", Integer{1, 1000}, &Limits::max_key_offers),
      field("max_startups", MaxStartups{}, store_startups),
      field("max_startups_per_source", Integer{1, kMaxConnections}, &Limits::max_startups_per_source),
      // At least 1: a prefix of 0 would put every address in one bucket, which is max_startups.
      field("source_prefix_v4", Integer{1, 32}, &Limits::source_prefix_v4),
      field("source_prefix_v6", Integer{1, 128}, &Limits::source_prefix_v6),
      field("max_sessions_per_domain", Integer{1, kMaxConnections}, &Limits::max_sessions_per_domain),
      field("max_actions", Integer{1, kMaxActions}, &Limits::max_actions),
      field("idle_timeout", Duration{0, kMaxIdleTimeout, true}, &Limits::idle_timeout_s),
      field("spare_sessions", Integer{0, kMaxSpareSessions}, &Limits::spare_sessions),
  }};
  return table;
}

// The default replay is a cap, and the ring never holds more than the scrollback anyway; a
// replay written down that the scrollback cannot hold is a mistake.
void check_replay(Loader& in, const Outcome& read, ConsoleSettings& c) {
  auto replay = find(read.given, "replay");
  if (!replay) {
    c.replay_bytes = std::min(c.replay_bytes, c.scrollback_bytes);
    return;
  }
  if (read.failed.contains("replay") || read.failed.contains("scrollback") ||
      c.replay_bytes <= c.scrollback_bytes)
    return;
  in.report(mark_of(*replay), fmt::format("replay: must not be more than scrollback ({}{}), got {}",
                                          format_size(c.scrollback_bytes),
                                          find(read.given, "scrollback") ? "" : ", the default",
                                          written_size(replay->value, c.replay_bytes)));
}

const Table<ConsoleSettings>& console_table() {
  static const Table<ConsoleSettings> table{
      {
          field("scrollback", Size{kMinScrollback, kMaxScrollback}, &ConsoleSettings::scrollback_bytes),
          field("replay", Size{0, kMaxScrollback}, &ConsoleSettings::replay_bytes),
          field("log_dir", DirOrOff{}, &ConsoleSettings::log_dir),
          field("log_max", Size{kMinLogMax, kMaxLogMax}, &ConsoleSettings::log_max_bytes),
      },
      check_replay};
  return table;
}

const Table<XenSettings>& xen_table() {
  static const Table<XenSettings> table{{
      field("toolstack", AbsolutePath{}, &XenSettings::toolstack),
      field("timeout", Duration{1, kMaxToolstackTimeout}, &XenSettings::timeout_s),
      field("lock_dir", AbsolutePath{}, &XenSettings::lock_dir),
  }};
  return table;
}

// --- the top level ---

bool read_listen(Loader& in, const Field& f, Config& c) {
  auto items = read_strings(in, f, true);
  if (!items) return false;
  size_t bad = 0;
  for (const auto& [text, node] : *items) {
    auto address = parse_listen_address(text);
    if (address) {
      c.listen.push_back(*address);
      continue;
    }
    in.report(node.Mark(), address.error().message);
    ++bad;
  }
  return bad == 0;
}

bool read_host_keys(Loader& in, const Field& f, Config& c) {
  auto items = read_strings(in, f, true);
  if (!items) return false;
  size_t bad = 0;
  for (const auto& [text, node] : *items) {
    if (!text.empty()) {
      c.host_keys.push_back(resolve_path(in.base_dir(), text));
      continue;
    }
    in.report(node.Mark(), fmt::format("{}: a path must not be empty", name_of(f)));
    ++bad;
  }
  return bad == 0;
}

void include_item(Loader& in, const std::string& text, const YAML::Node& node) {
  if (text.empty()) {
    in.report(node.Mark(), "include: a path must not be empty");
    return;
  }
  auto target = expand_include(text, in.base_dir());
  if (!target) in.report(node.Mark(), fmt::format("include '{}': {}", text, target.error().message));
  else in.include(*target, node);
}

// Paths or glob(3) patterns, relative to the main file's directory. Each is expanded in
// sorted order and its files read after the main file.
bool read_include(Loader& in, const Field& f, Config&) {
  if (f.value.IsNull()) return true;  // "include:" with none yet
  auto items = read_strings(in, f, false);
  if (!items) return false;
  for (const auto& [text, node] : *items) include_item(in, text, node);
  return true;
}

const Table<Config>& main_table() {
  static const Table<Config> table{{
      required(custom("listen", read_listen)),
      required(custom("host_keys", read_host_keys)),
      // Required of a node, by check_role: a front has no hypervisor and no domains.
      field("hypervisor",
            Choice<HypervisorKind>{{{"sim", HypervisorKind::sim}, {"xen", HypervisorKind::xen}}},
            &Config::hypervisor),
      field("audit_log", Path{.literal = "-"}, &Config::audit_log),
      // With includes, the main file may leave every domain to them.
      custom("domains", read_domains, domain_table),
      section("sim", sim_table, &Config::sim),
      field("run_as", UserName{}, &Config::run_as),
      field("chroot_dir", ChrootDir{}, &Config::chroot_dir),
      section("limits", limits_table, &Config::limits),
      section("console", console_table, &Config::console),
      section("xen", xen_table, &Config::xen),
      custom("web", read_web, web_table),
      custom("cluster", read_cluster, cluster_table),
      custom("fronts", read_fronts),
      custom("metrics", read_metrics, metrics_table),
      // Last: the main file's domains and keys are the first places, included ones the second.
      custom("include", read_include),
  }};
  return table;
}

}  // namespace

std::vector<std::string> schema_fields() { return names_of(main_table()); }

void read_main(Loader& in, const YAML::Node& root) {
  auto read = read_table(in, in.entries(root), root, main_table(), in.config());
  check_role(in, read, root, in.config());
  check_console_dir(in, read, in.config());
}

void read_included(Loader& in, const YAML::Node& root) {
  auto entries = in.entries(root);
  const Field* domains = nullptr;
  for (const auto& [name, field] : entries) {
    if (name == "domains") domains = &field;
    else if (name == "include")
      in.report(field.key.Mark(), "include: an included file cannot include others");
    else
      in.report(field.key.Mark(), fmt::format("field '{}' is not allowed here: only 'domains' "
                                              "may appear in an included file",
                                              name));
  }
  // Also catches a file emptied by a writer that has not written it yet.
  if (!domains) in.report(root.Mark(), "missing required field 'domains'");
  else read_domains(in, *domains, in.config());
}

}  // namespace xcg::config
