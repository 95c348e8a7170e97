// Readers of one YAML scalar into a typed setting. Each returns the value, or what was expected
// and what was written instead; the caller puts the field's name and position in front.
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"

namespace xcg::config {

inline constexpr unsigned long long kKiB = 1024, kMiB = 1024 * kKiB, kGiB = 1024 * kMiB;
inline constexpr long long kMaxConnections = 10000;  // every connection and session count
// What parse_size returns for a size too large to count: beyond every range.
inline constexpr unsigned long long kHugeSize = ~0ULL;

// Optional sign and up to 12 digits.
std::optional<long long> parse_integer(std::string_view text);
// Digits only: no sign, so "-0" or "+5" are not numbers here. Up to 12 digits.
std::optional<long long> parse_unsigned(std::string_view text);
// "30" or "30s", "2m", "1h" → seconds.
std::optional<long long> parse_duration(std::string_view text);
// "65536" or "64KiB", "1MiB", "1GiB", "512B"; K, M and G are binary too → bytes.
std::optional<unsigned long long> parse_size(std::string_view text);
// 65536 → "64KiB"; a count no unit divides stays in bytes.
std::string format_size(unsigned long long bytes);
// "'64KiB' (65536 bytes)"; just "'65536'" when written in bytes or too large to count.
std::string written_size(const YAML::Node& value, unsigned long long bytes);
// What the operator wrote, for messages: "nothing", "a list", "'x'", ...
std::string describe(const YAML::Node& n);

struct Text {
  bool nonempty = false;
  Result<std::string> operator()(const YAML::Node& value) const;
};

// Plain (unquoted) only: a quoted "5" is a string.
struct Integer {
  long long min, max;
  Result<long long> operator()(const YAML::Node& value) const;
};

struct Bool {
  Result<bool> operator()(const YAML::Node& value) const;
};

// Seconds; with `off`, "off" is 0 and `min` must be 0.
struct Duration {
  long long min, max;
  bool off = false;
  Result<unsigned> operator()(const YAML::Node& value) const;
};

// Bytes.
struct Size {
  unsigned long long min, max;
  Result<unsigned long long> operator()(const YAML::Node& value) const;
};

// One of a fixed set of words.
template <class E>
struct Choice {
  std::vector<std::pair<std::string_view, E>> words;
  Result<E> operator()(const YAML::Node& value) const;
};

// "a, b or c", for messages.
std::string one_of(const std::vector<std::string>& words);

template <class E>
Result<E> Choice<E>::operator()(const YAML::Node& value) const {
  auto text = Text{}(value);
  if (!text) return tl::unexpected(text.error());
  std::vector<std::string> quoted;
  for (const auto& [word, choice] : words) {
    if (word == *text) return choice;
    quoted.push_back("'" + std::string(word) + "'");
  }
  return fail(Errc::invalid_input, "expected " + one_of(quoted) + ", got '" + *text + "'");
}

// Not resolved against the config file's directory, and normalised: paths Xen's tools use.
struct AbsolutePath {
  Result<std::string> operator()(const YAML::Node& value) const;
};

// Relative to the directory of the file it is written in; `literal` (like "-") stays as it is.
struct Path {
  std::string_view literal = {};
  Result<std::string> operator()(const YAML::Node& value, const std::filesystem::path& base) const;
};

// A directory relative to the file it is written in; "" or "off" is none ("").
struct DirOrOff {
  Result<std::string> operator()(const YAML::Node& value, const std::filesystem::path& base) const;
};

// An absolute directory that is not the root, normalised.
struct ChrootDir {
  Result<std::string> operator()(const YAML::Node& value) const;
};

// A user to run as: portable, lower case, and not root.
struct UserName {
  Result<std::string> operator()(const YAML::Node& value) const;
};

// OpenSSH's MaxStartups "start:rate:full", or "N" meaning N:100:N.
struct Startups {
  unsigned begin, rate, full;
};
struct MaxStartups {
  Result<Startups> operator()(const YAML::Node& value) const;
};

// `relative` against `base`, unless it is absolute.
std::string resolve_path(const std::filesystem::path& base, const std::string& relative);

}  // namespace xcg::config
