// Text from outside (key comments, user names, guest and toolstack messages) made safe to put
// on a customer's terminal or in a log line, and the UTC time formats the logs use.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace xcg {

// At most `max` bytes of `text`; a tab becomes a space, every other byte outside printable
// ASCII becomes '?', so the result can carry no control sequence and break no line.
std::string printable(std::string_view text, size_t max = std::string_view::npos);

// `s` without leading and trailing ASCII whitespace (space, \t, \n, \v, \f, \r).
std::string_view trim(std::string_view s);

// The parts with `separator` between each two (also around empty parts).
std::string join(const std::vector<std::string_view>& parts, std::string_view separator);
std::string join(const std::vector<std::string>& parts, std::string_view separator);

// "2026-11-26T02:07:50Z", or with milliseconds "2026-11-26T02:07:50.123Z" (RFC 3339, UTC).
std::string utc_timestamp(std::chrono::system_clock::time_point t, bool milliseconds = false);

// "02:07:50 UTC": the time of day, for lines a customer reads.
std::string utc_clock_time(std::chrono::system_clock::time_point t);

}  // namespace xcg
