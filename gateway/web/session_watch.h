// The session's own descriptors (the broker socket and, while the core reads it, the console
// socket) gathered in one epoll descriptor of our own that the transport's loop waits on. Why
// not one Asio descriptor each: Asio puts a descriptor into non-blocking mode with ioctl(FIONBIO)
// the first time it waits on it, which the sandbox refuses for the console socket (it comes
// after the filter), and the broker socket must stay blocking for BrokerClient's calls. This
// one is made before the filter and stays level-triggered, so nothing ready is missed.
#pragma once

#include <optional>

#include "base/unique_fd.h"

namespace xcg::gateway::web {

// The console socket to watch: its number, and which attachment it came from (a number may be
// reused by the next console once the old one is closed).
struct WatchedConsole {
  int fd = -1;
  unsigned attachment = 0;
  bool operator==(const WatchedConsole&) const = default;
};

class SessionWatch {
 public:
  explicit SessionWatch(int broker_fd);  // throws std::system_error
  int fd() const { return epoll_.get(); }

  // Watches `console` from now on instead of the one before (none: nullopt). The old one may be
  // closed already, and its number reused by the new one. The same console as before costs no
  // system call: this runs after every event, three times per keystroke.
  void watch_console(std::optional<WatchedConsole> console);
  // Stops watching the broker (it hung up: its socket stays readable).
  void forget_broker();

  struct Ready {
    bool broker = false;
    bool console = false;
  };
  // Which are readable now; never blocks.
  Ready ready();

 private:
  UniqueFd epoll_;
  int broker_;
  std::optional<WatchedConsole> console_;
};

}  // namespace xcg::gateway::web
