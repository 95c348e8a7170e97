// Runs the Xen toolstack (`xl`) for lifecycle actions.
//
// Every run is an exec with an argv (never a shell), a timeout (then SIGKILL), an environment
// holding only PATH, stdin and stdout on /dev/null, and stderr captured and boiled down to one
// line that can be shown to a customer. Exits are seen through a pidfd: no SIGCHLD handler.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/event_loop.h"

namespace xcg::xen {

class Toolstack {
 public:
  using Done = std::function<void(Result<void>)>;
  static constexpr std::string_view kPath = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";

  Toolstack(EventLoop& loop, std::string program, std::chrono::milliseconds timeout);
  // Runs still going are left to finish (killing `xl create` half-way would leave a half-built
  // domain); their `done` is not called, nor that of a run whose failure to start is not
  // reported yet.
  ~Toolstack();
  Toolstack(const Toolstack&) = delete;
  Toolstack& operator=(const Toolstack&) = delete;

  // Runs `program args...` without waiting for it (xl create takes seconds, a hung xl the whole
  // timeout, and the caller is an event loop that serves every console): `done` runs from the
  // event loop once the program has exited or been killed at the timeout, never before
  // run_async returns. Errors: timeout, unavailable (could not execute it), system (it
  // failed; the message is its one-line reason).
  void run_async(const std::vector<std::string>& args, Done done);

  const std::string& program() const { return program_; }
  size_t running() const { return children_.size(); }

 private:
  struct Child;
  void on_exit(uint64_t id);
  void report_failed_start(Error error, Done done);
  void watch_child(uint64_t id, Child& c);

  EventLoop& loop_;
  std::string program_;
  std::chrono::milliseconds timeout_;
  std::map<uint64_t, std::unique_ptr<Child>> children_;
  // Runs that could not start, each reported from the loop by its timer.
  std::map<uint64_t, EventLoop::Timer> failed_starts_;
  uint64_t next_id_ = 1;
};

// The one line worth showing from a toolstack's stderr: libxl's first error (the cause; later
// ones are consequences) without its source-position prefix, else the last line; printable
// ASCII only, at most 200 characters. Empty if there is nothing to say.
std::string summarize_stderr(std::string_view text);

}  // namespace xcg::xen
