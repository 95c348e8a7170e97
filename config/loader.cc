// YAML text → Config. Every problem is collected with its position; nothing is returned
// unless the whole file is valid.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <span>

#include "base/unique_fd.h"
#include "config/config.h"

namespace xcg::config {
namespace {

// A mapping entry: the key node (for positions) and its value.
struct Field {
  YAML::Node key;
  YAML::Node value;
};
using Entries = std::vector<std::pair<std::string, Field>>;  // in file order
using Fields = std::map<std::string, Field, std::less<>>;

constexpr std::string_view kTopFields[] = {"listen",    "host_keys",  "hypervisor",
                                           "audit_log", "domains",    "sim",
                                           "run_as",    "chroot_dir", "limits"};
constexpr std::string_view kRequiredTopFields[] = {"listen", "host_keys", "hypervisor", "domains"};
constexpr std::string_view kDomainFields[] = {"on_login", "actions", "memory", "vcpus", "keys"};
constexpr std::string_view kSimFields[] = {"guest_command", "autostart", "shutdown_grace_ms"};
constexpr std::string_view kLimitsFields[] = {"login_grace",
                                              "max_auth_tries",
                                              "max_startups",
                                              "max_startups_per_source",
                                              "max_sessions_per_domain",
                                              "idle_timeout"};

// Ranges of the Limits members (see config.h).
constexpr long long kMaxLoginGrace = 3600;
constexpr long long kMaxAuthTries = 100;
constexpr long long kMaxConnections = 10000;  // every connection and session count
constexpr long long kMaxIdleTimeout = 7 * 24 * 3600;

// A null value ("memory:" with nothing after it) has the position of the next token, which
// may be lines further down; the key is where the operator looks.
YAML::Mark mark_of(const Field& f) { return f.value.IsNull() ? f.key.Mark() : f.value.Mark(); }

const Field* find(const Fields& fields, std::string_view name) {
  auto it = fields.find(name);
  return it == fields.end() ? nullptr : &it->second;
}

std::optional<long long> parse_integer(const std::string& text) {
  size_t i = text.starts_with('-') ? 1 : 0;
  if (i == text.size() || text.size() - i > 12) return std::nullopt;
  long long value = 0;
  for (size_t j = i; j < text.size(); ++j) {
    if (text[j] < '0' || text[j] > '9') return std::nullopt;
    value = value * 10 + (text[j] - '0');
  }
  return i ? -value : value;
}

// Digits only: no sign, so "-0" or "+5" are not numbers here. Up to 12 digits, so that a
// duration in hours cannot overflow.
std::optional<long long> parse_unsigned(std::string_view text) {
  if (text.empty() || text.size() > 12) return std::nullopt;
  long long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

// "30" or "30s", "2m", "1h" → seconds.
std::optional<long long> parse_duration(std::string_view text) {
  constexpr std::pair<char, long long> kUnits[] = {{'s', 1}, {'m', 60}, {'h', 3600}};
  long long unit = 1;
  for (auto [suffix, seconds] : kUnits) {
    if (text.ends_with(suffix)) {
      unit = seconds;
      text.remove_suffix(1);
      break;
    }
  }
  auto value = parse_unsigned(text);
  if (!value) return std::nullopt;
  return *value * unit;
}

// A POSIX-portable user name, lower case only (useradd's default NAME_REGEX): it never needs
// quoting and cannot be mistaken for a uid.
bool valid_user_name(std::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && ((c >= '0' && c <= '9') || c == '-'));
    if (!ok) return false;
  }
  return true;
}

// "/a//b/./c/" → {a, b, c}. Done by hand: std::filesystem keeps "//" as a root name.
std::vector<std::string_view> path_components(std::string_view path) {
  std::vector<std::string_view> out;
  for (size_t from = 0; from <= path.size();) {
    size_t slash = std::min(path.find('/', from), path.size());
    auto part = path.substr(from, slash - from);
    if (!part.empty() && part != ".") out.push_back(part);
    from = slash + 1;
  }
  return out;
}

std::string join(const std::vector<std::string_view>& parts, std::string_view separator) {
  std::string out;
  for (auto part : parts) {
    if (!out.empty()) out += separator;
    out += part;
  }
  return out;
}

struct Startups {
  unsigned begin, rate, full;
};

constexpr std::string_view kStartupsForm = "expected START:RATE:FULL (like 10:30:100) or a number";

// OpenSSH's MaxStartups: "start:rate:full", or "N" meaning N:100:N.
Result<Startups> parse_max_startups(std::string_view text) {
  std::vector<std::optional<long long>> parts;
  for (size_t from = 0;;) {
    size_t colon = text.find(':', from);
    parts.push_back(parse_unsigned(text.substr(from, colon - from)));
    if (colon == text.npos) break;
    from = colon + 1;
  }
  if ((parts.size() != 1 && parts.size() != 3) ||
      std::find(parts.begin(), parts.end(), std::nullopt) != parts.end())
    return fail(Errc::invalid_input, fmt::format("{}, got '{}'", kStartupsForm, text));
  if (parts.size() == 1) {
    long long n = *parts[0];
    if (n < 1 || n > kMaxConnections)
      return fail(Errc::invalid_input,
                  fmt::format("expected a number from 1 to {}, got {}", kMaxConnections, n));
    return Startups{unsigned(n), 100, unsigned(n)};
  }
  long long begin = *parts[0], rate = *parts[1], full = *parts[2];
  if (begin < 1 || begin > kMaxConnections)
    return fail(Errc::invalid_input,
                fmt::format("START must be from 1 to {}, got {}", kMaxConnections, begin));
  if (rate < 1 || rate > 100)
    return fail(Errc::invalid_input,
                fmt::format("RATE must be a percentage from 1 to 100, got {}", rate));
  if (full < begin)
    return fail(Errc::invalid_input,
                fmt::format("FULL ({}) must not be less than START ({})", full, begin));
  if (full > kMaxConnections)
    return fail(Errc::invalid_input,
                fmt::format("FULL must be at most {}, got {}", kMaxConnections, full));
  return Startups{unsigned(begin), unsigned(rate), unsigned(full)};
}

// What the operator wrote instead, for messages.
std::string describe(const YAML::Node& n) {
  if (n.IsNull()) return "nothing";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  if (n.Tag() != "?") return fmt::format("the quoted string \"{}\"", n.Scalar());
  return fmt::format("'{}'", n.Scalar());
}

// Plain (unquoted, untagged) scalars are the only ones YAML would read as numbers or bools.
bool is_plain_scalar(const YAML::Node& n) { return n.IsScalar() && n.Tag() == "?"; }

}  // namespace

class Loader {
 public:
  Loader(std::string file, std::filesystem::path base_dir)
      : file_(std::move(file)), base_dir_(std::move(base_dir)) {
    config_.path = file_;
  }

  std::shared_ptr<const Config> load(const std::string& text) {
    if (auto root = parse_yaml(text)) read_top(*root);
    if (!problems_.empty()) {
      std::stable_sort(problems_.begin(), problems_.end(), [](const auto& a, const auto& b) {
        return std::pair(a.where.line, a.where.column) < std::pair(b.where.line, b.where.column);
      });
      throw ConfigError(std::move(problems_));
    }
    for (const auto& [blob, first] : key_owners_) config_.domain_by_blob_[blob] = first.domain;
    return std::make_shared<const Config>(std::move(config_));
  }

 private:
  struct KeyOwner {
    std::string domain;
    Location where;
  };

  Location where(const YAML::Mark& m) const {
    if (m.is_null() || m.line < 0) return Location{file_, 1, 1};
    return Location{file_, m.line + 1, m.column + 1};
  }

  void report(const YAML::Mark& m, std::string message) {
    problems_.push_back(Problem{where(m), std::move(message)});
  }

  std::optional<YAML::Node> parse_yaml(const std::string& text) {
    std::vector<YAML::Node> docs;
    try {
      docs = YAML::LoadAll(text);
    } catch (const YAML::Exception& e) {
      report(e.mark, "YAML syntax error: " + e.msg);
      return std::nullopt;
    }
    if (docs.empty()) return YAML::Node(YAML::NodeType::Map);
    if (docs.size() > 1) report(docs[1].Mark(), "only one YAML document is allowed per file");
    if (docs[0].IsNull()) return YAML::Node(YAML::NodeType::Map);
    if (!docs[0].IsMap()) {
      report(docs[0].Mark(), "expected a mapping of settings (listen, host_keys, ...) at the top");
      return std::nullopt;
    }
    return docs[0];
  }

  // --- generic readers; each reports its own problems and returns nullopt on any ---

  std::optional<Entries> read_entries(const Field& f, std::string_view name) {
    if (f.value.IsNull()) return Entries{};
    if (!f.value.IsMap()) {
      report(mark_of(f), fmt::format("{}: expected a mapping", name));
      return std::nullopt;
    }
    return read_entries(f.value);
  }

  Entries read_entries(const YAML::Node& map) {
    Entries out;
    for (auto it = map.begin(); it != map.end(); ++it) {
      YAML::Node key = it->first;  // a copy: `it->` points into a temporary
      if (!key.IsScalar()) {
        report(key.Mark(), "expected a plain name as a mapping key");
        continue;
      }
      auto first = std::find_if(out.begin(), out.end(),
                                [&](const auto& e) { return e.first == key.Scalar(); });
      if (first != out.end()) {
        report(key.Mark(), fmt::format("duplicate key '{}' (first at {})", key.Scalar(),
                                       where(first->second.key.Mark()).str()));
        continue;
      }
      out.emplace_back(key.Scalar(), Field{key, it->second});
    }
    return out;
  }

  Fields read_fields(const Entries& entries, std::span<const std::string_view> known) {
    Fields out;
    for (const auto& [name, field] : entries) {
      if (std::find(known.begin(), known.end(), name) == known.end())
        report(field.key.Mark(), fmt::format("unknown field '{}'", name));
      else
        out.emplace(name, field);
    }
    return out;
  }

  std::optional<std::string> read_string(const Field& f, std::string_view name) {
    if (!f.value.IsScalar()) {
      report(mark_of(f), fmt::format("{}: expected a string", name));
      return std::nullopt;
    }
    return f.value.Scalar();
  }

  std::optional<std::string> read_nonempty_string(const Field& f, std::string_view name) {
    auto s = read_string(f, name);
    if (s && s->empty()) {
      report(mark_of(f), fmt::format("{}: must not be empty", name));
      return std::nullopt;
    }
    return s;
  }

  // Each item with its node, for positions.
  std::optional<std::vector<std::pair<std::string, YAML::Node>>> read_string_list(
      const Field& f, std::string_view name) {
    if (!f.value.IsSequence()) {
      report(mark_of(f), fmt::format("{}: expected a list of strings", name));
      return std::nullopt;
    }
    std::vector<std::pair<std::string, YAML::Node>> out;
    bool ok = true;
    for (const auto& item : f.value) {
      if (item.IsScalar()) {
        out.emplace_back(item.Scalar(), item);
      } else {
        report(item.Mark(),
               fmt::format("{}: expected a list of strings; this item is not a string", name));
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return out;
  }

  std::optional<std::vector<std::pair<std::string, YAML::Node>>> read_nonempty_list(
      const Field& f, std::string_view name) {
    auto items = read_string_list(f, name);
    if (items && items->empty()) {
      report(mark_of(f), fmt::format("{}: must list at least one item", name));
      return std::nullopt;
    }
    return items;
  }

  std::optional<long long> read_integer(const Field& f, std::string_view name, long long min,
                                        long long max) {
    auto value = is_plain_scalar(f.value) ? parse_integer(f.value.Scalar()) : std::nullopt;
    if (!value || *value < min || *value > max) {
      report(mark_of(f), fmt::format("{}: expected an integer from {} to {}, got {}", name, min,
                                     max, describe(f.value)));
      return std::nullopt;
    }
    return value;
  }

  std::optional<bool> read_bool(const Field& f, std::string_view name) {
    if (is_plain_scalar(f.value)) {
      const auto& s = f.value.Scalar();
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
    }
    report(mark_of(f), fmt::format("{}: expected true or false, got {}", name, describe(f.value)));
    return std::nullopt;
  }

  std::string resolve_path(const std::string& p) const {
    std::filesystem::path path(p);
    if (path.is_absolute()) return p;
    return (base_dir_ / path).lexically_normal().string();
  }

  // --- the schema ---

  void read_top(const YAML::Node& root) {
    auto fields = read_fields(read_entries(root), kTopFields);
    for (auto name : kRequiredTopFields)
      if (!find(fields, name))
        report(root.Mark(), fmt::format("missing required field '{}'", name));
    if (auto f = find(fields, "listen")) read_listen(*f);
    if (auto f = find(fields, "host_keys")) read_host_keys(*f);
    if (auto f = find(fields, "hypervisor")) read_hypervisor(*f);
    if (auto f = find(fields, "audit_log")) read_audit_log(*f);
    if (auto f = find(fields, "domains")) read_domains(*f);
    if (auto f = find(fields, "sim")) read_sim(*f);
    if (auto f = find(fields, "run_as")) read_run_as(*f);
    if (auto f = find(fields, "chroot_dir")) read_chroot_dir(*f);
    if (auto f = find(fields, "limits")) read_limits(*f);
  }

  void read_listen(const Field& f) {
    auto items = read_nonempty_list(f, "listen");
    if (!items) return;
    for (const auto& [text, node] : *items) {
      auto address = parse_listen_address(text);
      if (address)
        config_.listen.push_back(*address);
      else
        report(node.Mark(), address.error().message);
    }
  }

  void read_host_keys(const Field& f) {
    auto items = read_nonempty_list(f, "host_keys");
    if (!items) return;
    for (const auto& [text, node] : *items) {
      if (text.empty())
        report(node.Mark(), "host_keys: a path must not be empty");
      else
        config_.host_keys.push_back(resolve_path(text));
    }
  }

  void read_hypervisor(const Field& f) {
    auto s = read_string(f, "hypervisor");
    if (!s) return;
    if (*s == "sim")
      config_.hypervisor = HypervisorKind::sim;
    else if (*s == "xen")
      config_.hypervisor = HypervisorKind::xen;
    else
      report(mark_of(f), fmt::format("hypervisor: expected 'sim' or 'xen', got '{}'", *s));
  }

  void read_audit_log(const Field& f) {
    auto s = read_nonempty_string(f, "audit_log");
    if (s) config_.audit_log = *s == "-" ? *s : resolve_path(*s);
  }

  void read_domains(const Field& f) {
    auto entries = read_entries(f, "domains");
    if (!entries) return;
    for (const auto& [name, field] : *entries) {
      if (!valid_domain_name(name))
        report(field.key.Mark(),
               fmt::format("bad domain name '{}': expected 1 to 64 letters, digits, '_', '.' or "
                           "'-', starting with a letter or digit",
                           name));
      Domain domain;
      domain.name = name;
      read_domain(field, domain);
      config_.domains.emplace(name, std::move(domain));
    }
  }

  void read_domain(const Field& f, Domain& d) {
    auto entries = read_entries(f, f.key.Scalar());
    if (!entries) return;
    auto fields = read_fields(*entries, kDomainFields);
    d.actions.assign(std::begin(kAllActions), std::end(kAllActions));
    if (auto a = find(fields, "actions")) read_actions(*a, d);
    if (auto o = find(fields, "on_login")) read_on_login(*o, d);
    if (auto m = find(fields, "memory")) {
      if (auto v = read_integer(*m, "memory", 1, 16 * 1024 * 1024)) d.memory_mib = unsigned(*v);
    }
    if (auto v = find(fields, "vcpus")) {
      if (auto n = read_integer(*v, "vcpus", 1, 512)) d.vcpus = unsigned(*n);
    }
    if (auto k = find(fields, "keys")) read_keys(*k, d);
  }

  void read_on_login(const Field& f, Domain& d) {
    auto s = read_string(f, "on_login");
    if (!s) return;
    if (*s == "menu") {
      d.on_login = OnLogin::menu;
    } else if (*s == "console") {
      d.on_login = OnLogin::console;
      if (!d.allows(Action::console))
        report(mark_of(f), "on_login: console needs 'console' in this domain's actions");
    } else {
      report(mark_of(f), fmt::format("on_login: expected 'menu' or 'console', got '{}'", *s));
    }
  }

  void read_actions(const Field& f, Domain& d) {
    auto items = read_string_list(f, "actions");
    if (!items) return;
    bool listed[std::size(kAllActions)] = {};
    for (const auto& [text, node] : *items) {
      auto action = parse_action(text);
      if (!action) {
        report(node.Mark(), fmt::format("unknown action '{}': expected console, start, shutdown, "
                                        "reboot or destroy",
                                        text));
      } else if (listed[size_t(*action)]) {
        report(node.Mark(), fmt::format("action '{}' is listed twice", text));
      }
      if (action) listed[size_t(*action)] = true;
    }
    d.actions.clear();
    for (Action a : kAllActions)
      if (listed[size_t(a)]) d.actions.push_back(a);
  }

  void read_keys(const Field& f, Domain& d) {
    if (f.value.IsNull()) return;  // "keys:" with none yet
    auto items = read_string_list(f, "keys");
    if (!items) return;
    for (const auto& [line, node] : *items) {
      auto key = parse_public_key(line);
      if (!key) {
        report(node.Mark(), "bad public key: " + key.error().message);
        continue;
      }
      auto [owner, inserted] =
          key_owners_.try_emplace(key->blob, KeyOwner{d.name, where(node.Mark())});
      if (!inserted) {
        auto comment = key->comment.empty() ? "" : fmt::format(" ({})", key->comment);
        report(node.Mark(),
               fmt::format("key {}{} is already listed for domain '{}' at {}", key->fingerprint(),
                           comment, owner->second.domain, owner->second.where.str()));
        continue;
      }
      d.keys.push_back(DomainKey{std::move(*key), where(node.Mark())});
    }
  }

  void read_sim(const Field& f) {
    auto entries = read_entries(f, "sim");
    if (!entries) return;
    auto fields = read_fields(*entries, kSimFields);
    if (auto g = find(fields, "guest_command")) {
      if (auto items = read_nonempty_list(*g, "guest_command")) {
        for (const auto& [arg, node] : *items) config_.sim.guest_command.push_back(arg);
      }
    }
    if (auto a = find(fields, "autostart")) {
      if (auto v = read_bool(*a, "autostart")) config_.sim.autostart = *v;
    }
    if (auto s = find(fields, "shutdown_grace_ms")) {
      if (auto v = read_integer(*s, "shutdown_grace_ms", 0, 600000))
        config_.sim.shutdown_grace_ms = unsigned(*v);
    }
  }

  void read_run_as(const Field& f) {
    auto s = read_string(f, "run_as");
    if (!s) return;
    if (*s == "root")
      report(mark_of(f), "run_as must not be root: sessions would keep full privileges");
    else if (!valid_user_name(*s))
      report(mark_of(f), fmt::format("run_as: bad user name '{}': expected 1 to 32 lower-case "
                                     "letters, digits, '_' or '-', starting with a letter or '_'",
                                     *s));
    else
      config_.run_as = *s;
  }

  // Not resolved against the config's directory like other paths: a chroot that moves with the
  // config file is a surprise nobody wants.
  void read_chroot_dir(const Field& f) {
    auto s = read_nonempty_string(f, "chroot_dir");
    if (!s) return;
    auto components = path_components(*s);
    if (s->find('\0') != std::string::npos)
      // chroot(2) would stop at the NUL: "/\0x" is "/".
      report(mark_of(f), "chroot_dir: must not contain a NUL character");
    else if (!s->starts_with('/'))
      report(mark_of(f), fmt::format("chroot_dir: must be an absolute path, got '{}'", *s));
    else if (std::find(components.begin(), components.end(), "..") != components.end())
      report(mark_of(f), fmt::format("chroot_dir: must not contain '..', got '{}'", *s));
    else if (components.empty())
      report(mark_of(f), fmt::format("chroot_dir: must not be the root directory, got '{}': "
                                     "sessions would see the whole file system",
                                     *s));
    else
      config_.chroot_dir = "/" + join(components, "/");
  }

  void read_limits(const Field& f) {
    auto entries = read_entries(f, "limits");
    if (!entries) return;
    auto fields = read_fields(*entries, kLimitsFields);
    Limits& l = config_.limits;
    if (auto g = find(fields, "login_grace")) {
      if (auto v = read_duration(*g, "login_grace", 1, kMaxLoginGrace)) l.login_grace_s = *v;
    }
    if (auto t = find(fields, "max_auth_tries")) {
      if (auto v = read_integer(*t, "max_auth_tries", 1, kMaxAuthTries))
        l.max_auth_tries = unsigned(*v);
    }
    if (auto s = find(fields, "max_startups")) read_max_startups(*s);
    if (auto s = find(fields, "max_startups_per_source")) {
      if (auto v = read_integer(*s, "max_startups_per_source", 1, kMaxConnections))
        l.max_startups_per_source = unsigned(*v);
    }
    if (auto s = find(fields, "max_sessions_per_domain")) {
      if (auto v = read_integer(*s, "max_sessions_per_domain", 1, kMaxConnections))
        l.max_sessions_per_domain = unsigned(*v);
    }
    if (auto i = find(fields, "idle_timeout")) {
      if (auto v = read_duration(*i, "idle_timeout", 0, kMaxIdleTimeout, kOffAllowed))
        l.idle_timeout_s = *v;
    }
  }

  static constexpr bool kOffAllowed = true;

  // Quoted or not: "30s" is a string either way, so "30" may be too. With `off_allowed`, "off"
  // is 0, and `min` must be 0.
  std::optional<unsigned> read_duration(const Field& f, std::string_view name, long long min,
                                        long long max, bool off_allowed = false) {
    bool scalar = f.value.IsScalar();
    auto got = scalar ? fmt::format("'{}'", f.value.Scalar()) : describe(f.value);
    if (off_allowed && scalar && f.value.Scalar() == "off") return 0;
    auto seconds = scalar ? parse_duration(f.value.Scalar()) : std::nullopt;
    if (!seconds) {
      report(mark_of(f), fmt::format("{}: expected {}seconds, or a number with unit s, m or h "
                                     "(30, 30s, 2m, 1h), got {}",
                                     name, off_allowed ? "off, or " : "", got));
      return std::nullopt;
    }
    if (*seconds < min || *seconds > max) {
      if (f.value.Scalar() != std::to_string(*seconds))
        got += fmt::format(" ({} seconds)", *seconds);
      report(mark_of(f), fmt::format("{}: expected a duration from {} to {} seconds, got {}", name,
                                     min, max, got));
      return std::nullopt;
    }
    return unsigned(*seconds);
  }

  void read_max_startups(const Field& f) {
    if (!f.value.IsScalar()) {
      report(mark_of(f), fmt::format("max_startups: {}, got {}", kStartupsForm, describe(f.value)));
      return;
    }
    auto startups = parse_max_startups(f.value.Scalar());
    if (!startups) {
      report(mark_of(f), "max_startups: " + startups.error().message);
      return;
    }
    config_.limits.startups_begin = startups->begin;
    config_.limits.startups_rate = startups->rate;
    config_.limits.startups_full = startups->full;
  }

  std::string file_;
  std::filesystem::path base_dir_;
  Config config_;
  std::vector<Problem> problems_;
  std::map<std::string, KeyOwner> key_owners_;  // by key blob
};

namespace {

// The whole file, or an errno. Capped: a config is small, and /dev/zero is not a config.
Result<std::string> read_file(const std::string& path) {
  constexpr size_t kMaxSize = 16 * 1024 * 1024;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("cannot open");
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("cannot read");
    if (n == 0) return text;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxSize) return fail(Errc::invalid_input, "the file is larger than 16 MiB");
  }
}

}  // namespace

std::shared_ptr<const Config> parse_config(const std::string& text, const std::string& path) {
  return Loader(path, std::filesystem::path(path).parent_path()).load(text);
}

std::shared_ptr<const Config> load_config(const std::string& path) {
  auto text = read_file(path);
  if (!text) throw ConfigError({Problem{Location{path, 1, 1}, text.error().message}});
  // Relative paths inside stay valid if the gateway later changes its working directory.
  std::error_code ec;
  auto absolute = std::filesystem::absolute(path, ec);
  auto base_dir = (ec ? std::filesystem::path(path) : absolute).parent_path();
  return Loader(path, base_dir).load(*text);
}

}  // namespace xcg::config
