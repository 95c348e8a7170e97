// Diagnostic log (not the audit log): one line per record on stderr.
#pragma once

#include <functional>
#include <string_view>

#include <fmt/format.h>

namespace xcg::log {

enum class Level { debug, info, warn, error };

// Where records go. The default writes "TIME LEVEL message" to stderr; session processes
// redirect records to the broker.
using Sink = std::function<void(Level, std::string_view)>;
void set_sink(Sink sink);
void set_min_level(Level level);
void write(Level level, std::string_view message);

template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::warn, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::error, fmt::format(f, std::forward<Args>(args)...));
}

std::string_view level_name(Level level);

}  // namespace xcg::log
