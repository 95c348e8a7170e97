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

std::tm utc_of(std::chrono::system_clock::time_point t) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  return utc;
}

}  // namespace

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
