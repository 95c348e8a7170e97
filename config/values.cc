#include "config/values.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/text.h"

namespace xcg::config {
namespace {

constexpr std::string_view kStartupsForm = "expected START:RATE:FULL (like 10:30:100) or a number";

tl::unexpected<Error> bad(std::string message) { return fail(Errc::invalid_input, std::move(message)); }

// Plain (unquoted, untagged) scalars are the only ones YAML would read as numbers or bools.
bool is_plain_scalar(const YAML::Node& n) { return n.IsScalar() && n.Tag() == "?"; }

// Durations and sizes, quoted or not: "30s" is a string either way, so "30" may be too.
std::string written(const YAML::Node& n) {
  return n.IsScalar() ? fmt::format("'{}'", n.Scalar()) : describe(n);
}

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

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

// "a:b:c" → each part as a number, nullopt where it is not one.
std::vector<std::optional<long long>> colon_numbers(std::string_view text) {
  std::vector<std::optional<long long>> parts;
  for (size_t from = 0;;) {
    size_t colon = text.find(':', from);
    parts.push_back(parse_unsigned(text.substr(from, colon - from)));
    if (colon == std::string_view::npos) return parts;
    from = colon + 1;
  }
}

Result<Startups> startups_of_one(long long n) {
  if (n < 1 || n > kMaxConnections)
    return bad(fmt::format("expected a number from 1 to {}, got {}", kMaxConnections, n));
  return Startups{unsigned(n), 100, unsigned(n)};
}

Result<Startups> startups_of_three(long long begin, long long rate, long long full) {
  if (begin < 1 || begin > kMaxConnections)
    return bad(fmt::format("START must be from 1 to {}, got {}", kMaxConnections, begin));
  if (rate < 1 || rate > 100)
    return bad(fmt::format("RATE must be a percentage from 1 to 100, got {}", rate));
  if (full < begin) return bad(fmt::format("FULL ({}) must not be less than START ({})", full, begin));
  if (full > kMaxConnections)
    return bad(fmt::format("FULL must be at most {}, got {}", kMaxConnections, full));
  return Startups{unsigned(begin), unsigned(rate), unsigned(full)};
}

Result<Startups> parse_max_startups(std::string_view text) {
  auto parts = colon_numbers(text);
  if ((parts.size() != 1 && parts.size() != 3) ||
      std::find(parts.begin(), parts.end(), std::nullopt) != parts.end())
    return bad(fmt::format("{}, got '{}'", kStartupsForm, text));
  if (parts.size() == 1) return startups_of_one(*parts[0]);
  return startups_of_three(*parts[0], *parts[1], *parts[2]);
}

}  // namespace

std::optional<long long> parse_integer(std::string_view text) {
  bool negative = text.starts_with('-');
  auto value = parse_unsigned(text.substr(negative ? 1 : 0));
  if (!value) return std::nullopt;
  return negative ? -*value : *value;
}

std::optional<long long> parse_unsigned(std::string_view text) {
  if (text.empty() || text.size() > 12) return std::nullopt;
  long long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

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

std::optional<unsigned long long> parse_size(std::string_view text) {
  // "KiB" before "B": the longer suffix first.
  constexpr std::pair<std::string_view, unsigned long long> kUnits[] = {
      {"KiB", kKiB}, {"MiB", kMiB}, {"GiB", kGiB}, {"K", kKiB}, {"M", kMiB}, {"G", kGiB}, {"B", 1}};
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
  if (__builtin_mul_overflow(static_cast<unsigned long long>(*value), unit, &bytes)) return kHugeSize;
  return bytes;
}

std::string format_size(unsigned long long bytes) {
  constexpr std::pair<std::string_view, unsigned long long> kUnits[] = {
      {"GiB", kGiB}, {"MiB", kMiB}, {"KiB", kKiB}};
  if (bytes == 0) return "0";
  for (auto [suffix, size] : kUnits)
    if (bytes % size == 0) return fmt::format("{}{}", bytes / size, suffix);
  return fmt::format("{} bytes", bytes);
}

std::string written_size(const YAML::Node& value, unsigned long long bytes) {
  auto out = fmt::format("'{}'", value.Scalar());
  if (bytes != kHugeSize && value.Scalar() != std::to_string(bytes)) out += fmt::format(" ({} bytes)", bytes);
  return out;
}

std::string describe(const YAML::Node& n) {
  if (n.IsNull()) return "nothing";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  if (n.Tag() != "?") return fmt::format("the quoted string \"{}\"", n.Scalar());
  return fmt::format("'{}'", n.Scalar());
}

std::string one_of(const std::vector<std::string>& words) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += i + 1 == words.size() ? " or " : ", ";
    out += words[i];
  }
  return out;
}

std::string resolve_path(const std::filesystem::path& base, const std::string& relative) {
  std::filesystem::path path(relative);
  if (path.is_absolute()) return relative;
  return (base / path).lexically_normal().string();
}

Result<std::string> Text::operator()(const YAML::Node& value) const {
  if (!value.IsScalar()) return bad("expected a string");
  if (nonempty && value.Scalar().empty()) return bad("must not be empty");
  return value.Scalar();
}

Result<long long> Integer::operator()(const YAML::Node& value) const {
  auto n = is_plain_scalar(value) ? parse_integer(value.Scalar()) : std::nullopt;
  if (!n || *n < min || *n > max)
    return bad(fmt::format("expected an integer from {} to {}, got {}", min, max, describe(value)));
  return *n;
}

Result<bool> Bool::operator()(const YAML::Node& value) const {
  if (is_plain_scalar(value)) {
    const auto& s = value.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  return bad(fmt::format("expected true or false, got {}", describe(value)));
}

Result<unsigned> Duration::operator()(const YAML::Node& value) const {
  bool scalar = value.IsScalar();
  if (off && scalar && value.Scalar() == "off") return 0u;
  auto seconds = scalar ? parse_duration(value.Scalar()) : std::nullopt;
  auto got = written(value);
  if (!seconds)
    return bad(
        fmt::format("expected {}seconds, or a number with unit s, m or h "
                    "(30, 30s, 2m, 1h), got {}",
                    off ? "off, or " : "", got));
  if (*seconds >= min && *seconds <= max) return unsigned(*seconds);
  if (value.Scalar() != std::to_string(*seconds)) got += fmt::format(" ({} seconds)", *seconds);
  return bad(fmt::format("expected a duration from {} to {} seconds, got {}", min, max, got));
}

Result<unsigned long long> Size::operator()(const YAML::Node& value) const {
  auto bytes = value.IsScalar() ? parse_size(value.Scalar()) : std::nullopt;
  if (!bytes)
    return bad(
        fmt::format("expected bytes, or a number with unit B, KiB, MiB, GiB, "
                    "K, M or G (65536, 64KiB, 1MiB), got {}",
                    written(value)));
  if (*bytes >= min && *bytes <= max) return *bytes;
  return bad(fmt::format("expected a size from {} to {} ({} to {} bytes), got {}", format_size(min),
                         format_size(max), min, max, written_size(value, *bytes)));
}

Result<std::string> AbsolutePath::operator()(const YAML::Node& value) const {
  auto s = Text{.nonempty = true}(value);
  if (!s) return s;
  if (!s->starts_with('/') || has_nul(*s)) return bad(fmt::format("must be an absolute path, got '{}'", *s));
  std::string normal = std::filesystem::path(*s).lexically_normal().string();
  if (normal.size() > 1 && normal.ends_with('/')) normal.pop_back();
  return normal;
}

Result<std::string> Path::operator()(const YAML::Node& value, const std::filesystem::path& base) const {
  auto s = Text{.nonempty = true}(value);
  if (!s || (!literal.empty() && *s == literal)) return s;
  return resolve_path(base, *s);
}

// A directory really called "off" can be written "./off".
Result<std::string> DirOrOff::operator()(const YAML::Node& value, const std::filesystem::path& base) const {
  if (!value.IsScalar())
    return bad(fmt::format("expected a directory path, or off, got {}", describe(value)));
  const std::string& s = value.Scalar();
  // open(2) would stop at the NUL.
  if (has_nul(s)) return bad("must not contain a NUL character");
  if (s.empty() || s == "off") return std::string();
  return resolve_path(base, s);
}

// Not resolved against the config's directory like other paths: a chroot that moves with the
// config file is a surprise nobody wants.
Result<std::string> ChrootDir::operator()(const YAML::Node& value) const {
  auto s = Text{.nonempty = true}(value);
  if (!s) return s;
  auto components = path_components(*s);
  // chroot(2) would stop at the NUL: "/\0x" is "/".
  if (has_nul(*s)) return bad("must not contain a NUL character");
  if (!s->starts_with('/')) return bad(fmt::format("must be an absolute path, got '{}'", *s));
  if (std::find(components.begin(), components.end(), "..") != components.end())
    return bad(fmt::format("must not contain '..', got '{}'", *s));
  if (components.empty())
    return bad(
        fmt::format("must not be the root directory, got '{}': "
                    "sessions would see the whole file system",
                    *s));
  return "/" + join(components, "/");
}

Result<std::string> UserName::operator()(const YAML::Node& value) const {
  auto s = Text{}(value);
  if (!s) return s;
  if (*s == "root") return bad("must not be root: sessions would keep full privileges");
  if (!valid_user_name(*s))
    return bad(
        fmt::format("bad user name '{}': expected 1 to 32 lower-case letters, digits, "
                    "'_' or '-', starting with a letter or '_'",
                    *s));
  return s;
}

Result<Startups> MaxStartups::operator()(const YAML::Node& value) const {
  if (!value.IsScalar()) return bad(fmt::format("{}, got {}", kStartupsForm, describe(value)));
  return parse_max_startups(value.Scalar());
}

}  // namespace xcg::config
