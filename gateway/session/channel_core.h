// What runs on a customer's session channel, whatever the transport: the CustomerSession (menu,
// commands, console) on a single host or a node, the NodeRelay on a fleet's front. The
// transport reports the customer's events and calls step() after each wake-up.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace xcg::gateway {

// A pseudo-terminal the customer asked for, and its size.
struct PtySize {
  std::string term;
  int cols = 80;
  int rows = 24;
  bool operator==(const PtySize&) const = default;
};

class ChannelCore {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~ChannelCore() = default;

  // Before the start: the customer asked for a terminal. Only a relay passes it on; the menu and
  // the console do not depend on it.
  virtual void pty(const PtySize&) {}
  virtual void window_changed(const PtySize&) {}
  // False if the session was started already: one shell or exec command per session.
  virtual bool start_shell() = 0;
  virtual bool start_exec(std::string_view command) = 0;
  virtual void input(std::string_view bytes, Clock::time_point now) = 0;
  virtual void input_ended() = 0;  // the customer sends no more input
  virtual void hung_up() = 0;      // the customer's end is gone: nothing more can reach it
  // A descriptor the transport watches for the core, and what it calls when it is readable.
  virtual std::optional<int> console_to_watch() const { return std::nullopt; }
  virtual void console_readable() {}
  // How many consoles were attached so far: a new one may get the number of a closed one.
  virtual unsigned console_attachments() const { return 0; }
  virtual void step(Clock::time_point now) = 0;
  virtual bool started() const = 0;
  // Nothing more to do: the terminal was ended, or the customer is gone.
  virtual bool over() const = 0;
};

}  // namespace xcg::gateway
