#include "base/log.h"

#include "base/sd_notify.h"
#include "base/text.h"

#include <sys/time.h>
#include <cstdio>
#include <ctime>

namespace xcg::log {
namespace {

Level g_min_level = Level::info;

// syslog priorities, which the journal reads from a "<N>" prefix.
int journal_priority(Level level) {
  switch (level) {
    case Level::debug: return 7;
    case Level::info: return 6;
    case Level::warn: return 4;
    case Level::error: return 3;
  }
  return 6;
}

void write_stderr(Level level, std::string_view message) {
  // Under systemd the journal timestamps each line itself and takes the priority from a prefix.
  static const bool journal = sd_notify::stderr_is_journal();
  if (journal) {
    std::fprintf(stderr, "<%d>%.*s\n", journal_priority(level), static_cast<int>(message.size()),
                 message.data());
    std::fflush(stderr);
    return;
  }
  std::string stamp = utc_timestamp(std::chrono::system_clock::now(), true);
  std::fprintf(stderr, "%s %s %.*s\n", stamp.c_str(), level_name(level).data(),
               static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
}

Sink& sink() {
  static Sink s = write_stderr;
  return s;
}

}  // namespace

void set_sink(Sink s) { sink() = s ? std::move(s) : Sink(write_stderr); }
void set_min_level(Level level) { g_min_level = level; }

void write(Level level, std::string_view message) {
  if (level < g_min_level) return;
  sink()(level, message);
}

std::string_view level_name(Level level) {
  switch (level) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "?";
}

}  // namespace xcg::log
