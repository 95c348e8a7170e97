// YAML text → Config. Every problem is collected with its position; nothing is returned
// unless the whole file is valid.
#include <fcntl.h>
#include <fmt/format.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <span>
#include <tuple>
#include <utility>

#include "base/text.h"
#include "base/unique_fd.h"
#include "config/config.h"

namespace xcg::config {
namespace {

// yaml-cpp 0.7's LoadAll never returns on some inputs (",", "[a],b"): the parser reports a new
// empty document forever without consuming input (jbeder/yaml-cpp#1040, found by our fuzzer).
// Counting documents with a parser that builds nothing, bounded by the input size since every
// real document consumes at least one byte, tells whether LoadAll would come back.
class IgnoreEvents : public YAML::EventHandler {
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// Throws YAML::Exception on syntax errors, like LoadAll.
bool document_count_is_bounded(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  IgnoreEvents ignore;
  for (size_t docs = 0; docs <= text.size() + 1; ++docs)
    if (!parser.HandleNextDocument(ignore)) return true;
  return false;
}


// A mapping entry: the key node (for positions) and its value.
struct Field {
  YAML::Node key;
  YAML::Node value;
};
using Entries = std::vector<std::pair<std::string, Field>>;  // in file order
using Fields = std::map<std::string, Field, std::less<>>;

constexpr std::string_view kTopFields[] = {"listen",    "host_keys",  "hypervisor",
                                           "audit_log", "domains",    "sim",
                                           "run_as",    "chroot_dir", "limits",
                                           "console",   "include",    "xen"};
constexpr std::string_view kRequiredTopFields[] = {"listen", "host_keys", "hypervisor", "domains"};
constexpr std::string_view kDomainFields[] = {"on_login", "actions",     "memory", "vcpus",
                                              "keys",     "config_file", "console"};
constexpr std::string_view kXenFields[] = {"toolstack", "timeout", "lock_dir"};
constexpr long long kMaxToolstackTimeout = 600;
constexpr std::string_view kSimFields[] = {"guest_command", "autostart", "shutdown_grace_ms", "toolstack"};
constexpr std::string_view kLimitsFields[] = {"login_grace",
                                              "max_auth_tries",
                                              "max_key_offers",
                                              "max_startups",
                                              "max_startups_per_source",
                                              "source_prefix_v4",
                                              "source_prefix_v6",
                                              "max_sessions_per_domain",
                                              "max_actions",
                                              "idle_timeout"};

// Ranges of the Limits members (see config.h).
constexpr long long kMaxLoginGrace = 3600;
constexpr long long kMaxAuthTries = 100;
constexpr long long kMaxKeyOffers = 1000;
constexpr long long kMaxConnections = 10000;  // every connection and session count
constexpr long long kMaxIdleTimeout = 7 * 24 * 3600;
constexpr long long kMaxActions = 64;  // root toolstack processes at once

constexpr std::string_view kKeyFields[] = {"key", "readonly"};
constexpr std::string_view kConsoleFields[] = {"scrollback", "replay", "log_dir", "log_max"};

// Ranges of the ConsoleSettings members (see config.h), in bytes.
constexpr unsigned long long kKiB = 1024, kMiB = 1024 * kKiB, kGiB = 1024 * kMiB;
constexpr unsigned long long kMinScrollback = 4 * kKiB, kMaxScrollback = 64 * kMiB;
constexpr unsigned long long kMinLogMax = 4 * kKiB, kMaxLogMax = kGiB;

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

// What parse_size returns for a size too large to count: beyond every range.
constexpr unsigned long long kHugeSize = ~0ULL;

// "65536" or "64KiB", "1MiB", "1GiB", "512B"; K, M and G are binary too → bytes.
std::optional<unsigned long long> parse_size(std::string_view text) {
  // "KiB" before "B": the longer suffix first.
  constexpr std::pair<std::string_view, unsigned long long> kUnits[] = {
      {"KiB", kKiB}, {"MiB", kMiB}, {"GiB", kGiB}, {"K", kKiB},
      {"M", kMiB},   {"G", kGiB},   {"B", 1}};
  unsigned long long unit = 1;
  for (auto [suffix, bytes] : kUnits) {
    if (text.ends_with(suffix)) {
      unit = bytes;
      text.remove_suffix(suffix.size());
      break;
    }
  }
  auto value = parse_unsigned(text);
  if (!value) return std::nullopt;
  unsigned long long bytes;
  if (__builtin_mul_overflow(static_cast<unsigned long long>(*value), unit, &bytes))
    return kHugeSize;
  return bytes;
}

// 65536 → "64KiB"; a count no unit divides stays in bytes.
std::string format_size(unsigned long long bytes) {
  constexpr std::pair<std::string_view, unsigned long long> kUnits[] = {
      {"GiB", kGiB}, {"MiB", kMiB}, {"KiB", kKiB}};
  if (bytes == 0) return "0";
  for (auto [suffix, size] : kUnits)
    if (bytes % size == 0) return fmt::format("{}{}", bytes / size, suffix);
  return fmt::format("{} bytes", bytes);
}

// "console, start, ... or sysrq", for messages.
std::string action_choices() {
  std::string out;
  for (size_t i = 0; i < std::size(kAllActions); ++i) {
    if (i > 0) out += i + 1 == std::size(kAllActions) ? " or " : ", ";
    out += action_name(kAllActions[i]);
  }
  return out;
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

Result<std::string> read_file(const std::string& path);  // defined below

bool has_glob_magic(std::string_view pattern) {
  return pattern.find_first_of("*?[") != std::string_view::npos;
}

// Absolute and lexically normal; as given if the working directory is gone.
std::string absolute_path(const std::string& path) {
  std::error_code ec;
  auto absolute = std::filesystem::absolute(path, ec);
  return ec ? path : absolute.lexically_normal().string();
}

// The same file under another name (symlinks, "a/../b") compares equal.
std::string file_identity(const std::string& path) {
  std::error_code ec;
  auto canonical = std::filesystem::weakly_canonical(path, ec);
  return ec ? absolute_path(path) : canonical.string();
}

// Absolute, without a trailing slash; "" is the working directory.
std::string absolute_directory(const std::filesystem::path& dir) {
  auto out = absolute_path(dir.empty() ? "." : dir.string());
  if (out.size() > 1 && out.ends_with('/')) out.pop_back();
  return out;
}

// The directory whose entries decide what `pattern` matches: its leading components without
// glob characters ("domains.d/*.yaml" → "domains.d"), or a plain path's parent.
std::filesystem::path fixed_directory_of(const std::filesystem::path& pattern) {
  std::filesystem::path fixed;
  for (const auto& part : pattern) {
    if (has_glob_magic(part.native())) return fixed;
    fixed /= part;
  }
  return fixed.parent_path();
}

// "/srv/x[1]" → "/srv/x\\[1]": a name that glob(3) takes literally.
std::string glob_escape(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '*' || c == '?' || c == '[' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// glob(3) passes its error callback no context.
thread_local std::pair<std::string, int> glob_failure;

int on_glob_error(const char* path, int err) {
  // A missing directory matches nothing; an unreadable one might hide files that matter.
  if (err == ENOENT || err == ENOTDIR) return 0;
  glob_failure = {path, err};
  return 1;
}

// The matches in byte order (not the locale's), so that the same files always load in the same
// order. Matching nothing is not an error.
Result<std::vector<std::string>> expand_glob(const std::string& pattern) {
  glob_t matches{};
  glob_failure = {};
  int rc = ::glob(pattern.c_str(), GLOB_NOSORT, on_glob_error, &matches);
  std::vector<std::string> out;
  if (rc == 0) out.assign(matches.gl_pathv, matches.gl_pathv + matches.gl_pathc);
  ::globfree(&matches);
  if (rc == GLOB_ABORTED)
    return fail(Errc::system, fmt::format("cannot read directory '{}': {}", glob_failure.first,
                                          std::strerror(glob_failure.second)));
  if (rc == GLOB_NOSPACE) return fail(Errc::system, "out of memory");
  if (rc != 0 && rc != GLOB_NOMATCH) return fail(Errc::system, fmt::format("glob error {}", rc));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

class Loader {
 public:
  Loader(std::string file, std::filesystem::path base_dir)
      : file_(std::move(file)), base_dir_(std::move(base_dir)) {
    config_.path = file_;
    add_source_file(file_);
  }

  std::shared_ptr<const Config> load(const std::string& text) {
    if (auto root = parse_yaml(text)) read_top(*root);
    if (!problems_.empty()) {
      // Files in the order they were read; each file's problems in its order.
      auto position = [this](const Problem& p) {
        auto rank = file_ranks_.find(p.where.file);
        return std::tuple(rank == file_ranks_.end() ? 0 : rank->second, p.where.line,
                          p.where.column);
      };
      std::stable_sort(problems_.begin(), problems_.end(),
                       [&](const auto& a, const auto& b) { return position(a) < position(b); });
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

  std::optional<YAML::Node> parse_yaml(
      const std::string& text, std::string_view top = "of settings (listen, host_keys, ...)") {
    std::vector<YAML::Node> docs;
    try {
      if (!document_count_is_bounded(text)) {
        report(YAML::Mark(), "YAML syntax error: this file does not parse as YAML (stray ',' or ']'?)");
        return std::nullopt;
      }
      docs = YAML::LoadAll(text);
    } catch (const YAML::Exception& e) {
      report(e.mark, "YAML syntax error: " + e.msg);
      return std::nullopt;
    }
    if (docs.empty()) return YAML::Node(YAML::NodeType::Map);
    if (docs.size() > 1) report(docs[1].Mark(), "only one YAML document is allowed per file");
    if (docs[0].IsNull()) return YAML::Node(YAML::NodeType::Map);
    if (!docs[0].IsMap()) {
      report(docs[0].Mark(), fmt::format("expected a mapping {} at the top", top));
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
    // With includes, the main file may leave every domain to them.
    bool includes = find(fields, "include") != nullptr;
    for (auto name : kRequiredTopFields)
      if (!find(fields, name) && !(includes && name == "domains"))
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
    if (auto f = find(fields, "console")) read_console(*f);
    if (auto f = find(fields, "xen")) read_xen(*f);
    // Last: the main file's domains and keys are the first places, included ones the second.
    if (auto f = find(fields, "include")) read_include(*f);
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
      domain.where = where(field.key.Mark());
      read_domain(field, domain);
      // Within one file, read_entries has already reported a second definition.
      auto first = config_.domains.find(name);
      if (first != config_.domains.end())
        report(field.key.Mark(), fmt::format("domain '{}' is already defined at {}", name,
                                             first->second.where.str()));
      else
        config_.domains.emplace(name, std::move(domain));
    }
  }

  void read_domain(const Field& f, Domain& d) {
    d.config_file = "/etc/xen/" + d.name + ".cfg";
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
    if (auto c = find(fields, "config_file")) {
      if (auto s = read_nonempty_string(*c, "config_file")) d.config_file = resolve_path(*s);
    }
    if (auto c = find(fields, "console")) read_xen_console(*c, d);
  }

  void read_xen_console(const Field& f, Domain& d) {
    auto s = read_string(f, "console");
    if (!s) return;
    if (*s == "auto")
      d.xen_console = XenConsole::automatic;
    else if (*s == "pv")
      d.xen_console = XenConsole::pv;
    else if (*s == "serial")
      d.xen_console = XenConsole::serial;
    else
      report(mark_of(f), fmt::format("console: expected 'pv', 'serial' or 'auto', got '{}'", *s));
  }

  void read_xen(const Field& f) {
    auto entries = read_entries(f, "xen");
    if (!entries) return;
    auto fields = read_fields(*entries, kXenFields);
    XenSettings& xen = config_.xen;
    if (auto t = find(fields, "toolstack")) {
      if (auto s = read_absolute_path(*t, "toolstack")) xen.toolstack = *s;
    }
    if (auto t = find(fields, "timeout")) {
      if (auto v = read_duration(*t, "timeout", 1, kMaxToolstackTimeout)) xen.timeout_s = *v;
    }
    if (auto l = find(fields, "lock_dir")) {
      if (auto s = read_absolute_path(*l, "lock_dir")) xen.lock_dir = *s;
    }
  }

  // Paths that must not depend on the config file's place: what Xen's own tools use.
  std::optional<std::string> read_absolute_path(const Field& f, std::string_view name) {
    auto s = read_nonempty_string(f, name);
    if (!s) return std::nullopt;
    if (!s->starts_with('/') || s->find('\0') != std::string::npos) {
      report(mark_of(f), fmt::format("{}: must be an absolute path, got '{}'", name, *s));
      return std::nullopt;
    }
    std::string normal = std::filesystem::path(*s).lexically_normal().string();
    if (normal.size() > 1 && normal.ends_with('/')) normal.pop_back();
    return normal;
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
        report(node.Mark(),
               fmt::format("unknown action '{}': expected {}", text, action_choices()));
      } else if (listed[size_t(*action)]) {
        report(node.Mark(), fmt::format("action '{}' is listed twice", text));
      }
      if (action) listed[size_t(*action)] = true;
    }
    d.actions.clear();
    for (Action a : kAllActions)
      if (listed[size_t(a)]) d.actions.push_back(a);
  }

  // Each item is an OpenSSH key line, or a mapping {key: LINE, readonly: BOOL}.
  void read_keys(const Field& f, Domain& d) {
    if (f.value.IsNull()) return;  // "keys:" with none yet
    if (!f.value.IsSequence()) {
      report(mark_of(f), fmt::format("keys: expected a list of keys, got {}", describe(f.value)));
      return;
    }
    for (const auto& item : f.value) {
      if (item.IsScalar())
        add_key(item, false, d);
      else if (item.IsMap())
        read_key_mapping(item, d);
      else
        report(item.Mark(), fmt::format("keys: expected a key line or a mapping {{key: ..., "
                                        "readonly: ...}}, got {}",
                                        describe(item)));
    }
  }

  void read_key_mapping(const YAML::Node& map, Domain& d) {
    auto fields = read_fields(read_entries(map), kKeyFields);
    bool readonly = false;
    if (auto r = find(fields, "readonly")) {
      if (auto v = read_bool(*r, "readonly")) readonly = *v;
    }
    auto k = find(fields, "key");
    if (!k) {
      report(map.Mark(), "missing required field 'key'");
      return;
    }
    if (read_string(*k, "key")) add_key(k->value, readonly, d);
  }

  // `line` is a scalar node: its position is the key's.
  void add_key(const YAML::Node& line, bool readonly, Domain& d) {
    auto key = parse_public_key(line.Scalar());
    if (!key) {
      report(line.Mark(), "bad public key: " + key.error().message);
      return;
    }
    auto [owner, inserted] =
        key_owners_.try_emplace(key->blob, KeyOwner{d.name, where(line.Mark())});
    if (!inserted) {
      auto comment = key->comment.empty() ? "" : fmt::format(" ({})", key->comment);
      report(line.Mark(),
             fmt::format("key {}{} is already listed for domain '{}' at {}", key->fingerprint(),
                         comment, owner->second.domain, owner->second.where.str()));
      return;
    }
    d.keys.push_back(DomainKey{std::move(*key), where(line.Mark()), readonly});
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
    if (auto t = find(fields, "toolstack")) {
      if (auto s = read_absolute_path(*t, "toolstack")) config_.sim.toolstack = *s;
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
    if (auto t = find(fields, "max_key_offers")) {
      if (auto v = read_integer(*t, "max_key_offers", 1, kMaxKeyOffers)) l.max_key_offers = unsigned(*v);
    }
    if (auto s = find(fields, "max_startups")) read_max_startups(*s);
    if (auto s = find(fields, "max_startups_per_source")) {
      if (auto v = read_integer(*s, "max_startups_per_source", 1, kMaxConnections))
        l.max_startups_per_source = unsigned(*v);
    }
    // At least 1: a prefix of 0 would put every address in one bucket, which is max_startups.
    if (auto p = find(fields, "source_prefix_v4")) {
      if (auto v = read_integer(*p, "source_prefix_v4", 1, 32)) l.source_prefix_v4 = unsigned(*v);
    }
    if (auto p = find(fields, "source_prefix_v6")) {
      if (auto v = read_integer(*p, "source_prefix_v6", 1, 128)) l.source_prefix_v6 = unsigned(*v);
    }
    if (auto s = find(fields, "max_sessions_per_domain")) {
      if (auto v = read_integer(*s, "max_sessions_per_domain", 1, kMaxConnections))
        l.max_sessions_per_domain = unsigned(*v);
    }
    if (auto a = find(fields, "max_actions")) {
      if (auto v = read_integer(*a, "max_actions", 1, kMaxActions)) l.max_actions = unsigned(*v);
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

  void read_console(const Field& f) {
    auto entries = read_entries(f, "console");
    if (!entries) return;
    auto fields = read_fields(*entries, kConsoleFields);
    ConsoleSettings& c = config_.console;
    auto scrollback = find(fields, "scrollback");
    bool scrollback_ok = true;
    if (scrollback) {
      auto v = read_size(*scrollback, "scrollback", kMinScrollback, kMaxScrollback);
      if (v) c.scrollback_bytes = *v;
      scrollback_ok = v.has_value();
    }
    if (auto r = find(fields, "replay")) {
      auto v = read_size(*r, "replay", 0, kMaxScrollback);
      if (v && scrollback_ok && *v > c.scrollback_bytes)
        report(mark_of(*r), fmt::format("replay: must not be more than scrollback ({}{}), got {}",
                                        format_size(c.scrollback_bytes),
                                        scrollback ? "" : ", the default", written_size(*r, *v)));
      else if (v)
        c.replay_bytes = *v;
    } else {
      // The default is a cap, and the ring never holds more than the scrollback anyway.
      c.replay_bytes = std::min(c.replay_bytes, c.scrollback_bytes);
    }
    if (auto l = find(fields, "log_dir")) read_log_dir(*l);
    if (auto m = find(fields, "log_max")) {
      if (auto v = read_size(*m, "log_max", kMinLogMax, kMaxLogMax)) c.log_max_bytes = *v;
    }
  }

  // "" or "off": no console log. A directory really called "off" can be written "./off".
  void read_log_dir(const Field& f) {
    if (!f.value.IsScalar()) {
      report(mark_of(f), fmt::format("log_dir: expected a directory path, or off, got {}",
                                     describe(f.value)));
      return;
    }
    const std::string& s = f.value.Scalar();
    if (s.find('\0') != std::string::npos)
      // open(2) would stop at the NUL.
      report(mark_of(f), "log_dir: must not contain a NUL character");
    else if (s.empty() || s == "off")
      config_.console.log_dir.clear();
    else
      config_.console.log_dir = resolve_path(s);
  }

  // Quoted or not, like durations: "64KiB" is a string either way, so "65536" may be too.
  std::optional<unsigned long long> read_size(const Field& f, std::string_view name,
                                              unsigned long long min, unsigned long long max) {
    auto bytes = f.value.IsScalar() ? parse_size(f.value.Scalar()) : std::nullopt;
    if (!bytes) {
      report(mark_of(f), fmt::format("{}: expected bytes, or a number with unit B, KiB, MiB, GiB, "
                                     "K, M or G (65536, 64KiB, 1MiB), got {}",
                                     name, f.value.IsScalar() ? fmt::format("'{}'", f.value.Scalar())
                                                              : describe(f.value)));
      return std::nullopt;
    }
    if (*bytes < min || *bytes > max) {
      report(mark_of(f), fmt::format("{}: expected a size from {} to {} ({} to {} bytes), got {}",
                                     name, format_size(min), format_size(max), min, max,
                                     written_size(f, *bytes)));
      return std::nullopt;
    }
    return bytes;
  }

  // "'64KiB' (65536 bytes)"; just "'65536'" when written in bytes or too large to count.
  static std::string written_size(const Field& f, unsigned long long bytes) {
    auto out = fmt::format("'{}'", f.value.Scalar());
    if (bytes != kHugeSize && f.value.Scalar() != std::to_string(bytes))
      out += fmt::format(" ({} bytes)", bytes);
    return out;
  }

  // --- include: more files of domains ---

  // Paths or glob(3) patterns, relative to the main file's directory. Each is expanded in
  // sorted order and its files read after the main file.
  void read_include(const Field& f) {
    if (f.value.IsNull()) return;  // "include:" with none yet
    auto items = read_string_list(f, "include");
    if (!items) return;
    for (const auto& [text, node] : *items) {
      if (text.empty()) {
        report(node.Mark(), "include: a path must not be empty");
        continue;
      }
      std::filesystem::path written(text);
      // The including file's directory is a name, not a pattern, whatever characters it has.
      auto dir = written.is_absolute() ? std::filesystem::path() : base_dir_;
      add_watch_dir(absolute_directory(dir / fixed_directory_of(written)));
      if (!has_glob_magic(text)) {
        // A plain path names a file that must exist: reading it says if it does not.
        include_file(resolve_path(text), node);
        continue;
      }
      auto pattern = std::filesystem::path(glob_escape(dir.string())) / written;
      auto matches = expand_glob(pattern.lexically_normal().string());
      if (!matches) {
        report(node.Mark(), fmt::format("include '{}': {}", text, matches.error().message));
        continue;
      }
      for (const auto& match : *matches) include_file(match, node);
    }
  }

  // Each file once, even when two patterns match it.
  void include_file(const std::string& path, const YAML::Node& from) {
    auto identity = file_identity(path);
    if (identity == main_identity()) {
      report(from.Mark(), fmt::format("include: '{}' is the main config file itself; keep "
                                      "included files in a directory of their own",
                                      path));
      return;
    }
    if (!included_.insert(identity).second) return;
    auto from_place = where(from.Mark());
    // Positions from here on are in the included file, and its relative paths are its own.
    auto main_file = std::exchange(file_, path);
    auto main_dir = std::exchange(base_dir_, std::filesystem::path(path).parent_path());
    add_source_file(path);
    if (auto text = read_file(path); !text)
      report(YAML::Mark::null_mark(),
             fmt::format("{} (included from {})", text.error().message, from_place.str()));
    else if (auto root = parse_yaml(*text, "with 'domains'"))
      read_included_top(*root);
    file_ = std::move(main_file);
    base_dir_ = std::move(main_dir);
  }

  void read_included_top(const YAML::Node& root) {
    const Field* domains = nullptr;
    auto entries = read_entries(root);
    for (const auto& [name, field] : entries) {
      if (name == "domains")
        domains = &field;
      else if (name == "include")
        report(field.key.Mark(), "include: an included file cannot include others");
      else
        report(field.key.Mark(), fmt::format("field '{}' is not allowed here: only 'domains' may "
                                             "appear in an included file",
                                             name));
    }
    // Also catches a file emptied by a writer that has not written it yet.
    if (!domains)
      report(root.Mark(), "missing required field 'domains'");
    else
      read_domains(*domains);
  }

  // file_identity of the main file, looked up once per load.
  const std::string& main_identity() {
    if (!main_identity_) main_identity_ = file_identity(config_.path);
    return *main_identity_;
  }

  void add_source_file(const std::string& path) {
    file_ranks_.try_emplace(path, file_ranks_.size());
    config_.source_files.push_back(absolute_path(path));
  }

  void add_watch_dir(const std::string& dir) {
    auto& dirs = config_.watch_dirs;
    if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) dirs.push_back(dir);
  }

  std::string file_;  // the file being read: the main one, or an included one
  std::filesystem::path base_dir_;
  Config config_;
  std::vector<Problem> problems_;
  std::map<std::string, KeyOwner> key_owners_;  // by key blob
  std::map<std::string, size_t> file_ranks_;    // by name in messages: the order files are read
  std::set<std::string> included_;              // file_identity of every included file
  std::optional<std::string> main_identity_;
};

namespace {

// The whole file, or why not. Only a regular file will do: opening a FIFO would wait for a
// writer and reading a device may never end, and the broker reloads from its event loop, so
// the open does not wait (O_NONBLOCK) and anything else is refused before the first read.
// Capped: a config is small.
Result<std::string> read_file(const std::string& path) {
  constexpr size_t kMaxSize = 16 * 1024 * 1024;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd) return fail_errno("cannot open");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("cannot stat");
  if (!S_ISREG(st.st_mode)) return fail(Errc::invalid_input, "not a regular file");
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
