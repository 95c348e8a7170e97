// Text from outside (key comments, user names, guest and toolstack messages) made safe to put
// on a customer's terminal or in a log line, and the UTC time formats the logs use.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace xcg {

// At most `max` bytes of `text`; a tab becomes a space, every other byte outside printable
// ASCII becomes '?', so the result can carry no control sequence and break no line.
std::string printable(std::string_view text, size_t max = std::string_view::npos);

// "2026-11-26T02:07:50Z", or with milliseconds "2026-11-26T02:07:50.123Z" (RFC 3339, UTC).
std::string utc_timestamp(std::chrono::system_clock::time_point t, bool milliseconds = false);

// "02:07:50 UTC": the time of day, for lines a customer reads.
std::string utc_clock_time(std::chrono::system_clock::time_point t);

}  // namespace xcg
