// Checks what one viewer of a count guest's console (tests/load/count_guest.h) received, through
// `ssh DOMAIN@gw console`: every line of the domain exactly once and in order, from wherever the
// replay began to the live head, across reboots.
//
// The stream, split into lines at LF with the CR dropped and empty lines ignored:
//
//   [xcg: console of DOMAIN; Ctrl-] detaches]   the session's hint, first
//   then the replay and live output, where within one boot
//     Booting count guest DOMAIN (domid N)       (absent if the replay starts later)
//     DOMAIN a, DOMAIN a+1, ...                  a = 1 after the banner, any a >= 1 at the start
//     DOMAIN halt K                              the boot's end: K is its last number
//   and between two boots
//     [xcg: DOMAIN rebooted, new domid N]        the hub's notice; the next banner says domid N
//
// So "every line" across a reboot means: the old boot's numbers run without gap up to its
// halt line, whose K equals the last number seen (nothing of the old boot's tail was lost), then
// the notice, then the new boot's banner, then its numbers from 1. Anything else is an error,
// including "[xcg: N bytes skipped]" (a reading viewer must never fall behind), another
// domain's lines, and a replay that starts in the middle of a line.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace xcg::load {

class ConsoleCheck {
 public:
  explicit ConsoleCheck(std::string domain);

  // Takes the next bytes received. After the first error, further bytes are ignored.
  void feed(std::string_view bytes);

  bool ok() const { return error_.empty(); }
  // What went wrong, with the line number and the lines before it; empty if nothing did.
  const std::string& error() const { return error_; }

  // Progress, for "has this viewer reached the live head": (boots ended, last number).
  uint64_t reboots() const { return reboots_; }
  uint64_t last_number() const { return last_.value_or(0); }
  uint64_t numbers_seen() const { return numbers_seen_; }
  // The first number seen, if any: where the replay began (1 if it began at the boot).
  std::optional<uint64_t> first_number() const { return first_; }
  bool saw_hint() const { return phase_ != Phase::hint; }

 private:
  enum class Phase {
    hint,      // nothing yet: the session's hint comes first
    start,     // the replay may begin anywhere in a boot
    counting,  // within a boot, last_ set
    booted,    // after a banner: DOMAIN 1 or a halt at 0 next
    halted,    // after a halt line: the reboot notice next
    rebooted,  // after the notice: the banner with new_domid_ next
  };

  void take_line(std::string_view line);
  void on_number(uint64_t n);
  void on_halt(uint64_t k);
  void on_notice(uint64_t domid);
  void on_banner(uint64_t domid);
  void fail(std::string what);

  std::string domain_;
  Phase phase_ = Phase::hint;
  std::string partial_;  // the line being received
  std::string current_;  // the line being checked
  uint64_t line_no_ = 0;
  std::optional<uint64_t> last_;
  std::optional<uint64_t> first_;
  uint64_t new_domid_ = 0;
  uint64_t reboots_ = 0;
  uint64_t numbers_seen_ = 0;
  std::deque<std::string> recent_;  // the last few lines, for error messages
  std::string error_;
};

}  // namespace xcg::load
