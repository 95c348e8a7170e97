#include "base/text.h"

#include <ctime>

#include <fmt/format.h>

namespace xcg {

std::string printable(std::string_view text, size_t max) {
  std::string out(text.substr(0, max));
  for (char& c : out) {
    if (c == '\t') c = ' ';
    else if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

namespace {

constexpr std::string_view kWhitespace = " \t\n\v\f\r";

template <typename Parts>
std::string join_parts(const Parts& parts, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += separator;
    out += parts[i];
  }
  return out;
}

std::tm utc_of(std::chrono::system_clock::time_point t) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  return utc;
}

}  // namespace

std::string_view trim(std::string_view s) {
  auto first = s.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  auto last = s.find_last_not_of(kWhitespace);
  return s.substr(first, last - first + 1);
}

std::string join(const std::vector<std::string_view>& parts, std::string_view separator) {
  return join_parts(parts, separator);
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  return join_parts(parts, separator);
}

std::string utc_timestamp(std::chrono::system_clock::time_point t, bool milliseconds) {
  std::tm utc = utc_of(t);
  std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", utc.tm_year + 1900, utc.tm_mon + 1,
                                utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
  if (milliseconds) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
    out += fmt::format(".{:03}", ms < 0 ? ms + 1000 : ms);
  }
  return out + "Z";
}

std::string utc_clock_time(std::chrono::system_clock::time_point t) {
  std::tm utc = utc_of(t);
  return fmt::format("{:02}:{:02}:{:02} UTC", utc.tm_hour, utc.tm_min, utc.tm_sec);
}

}  // namespace xcg
