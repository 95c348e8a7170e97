// One epoll loop per process: descriptors with callbacks, and one-shot timers.
//
// Callbacks may add or remove descriptors and timers, including their own, while they run.
//
// A callback that throws does not end the loop: the exception is logged at error level with
// the registration's name ("session 12 ipc", "hub web1"), the registration is removed, its
// `on_failure` (if any) runs so that its owner can drop that one connection or hub, and the
// loop goes on with the others. One bug reached by one customer must not end every session.
#pragma once

#include <sys/epoll.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "base/unique_fd.h"

namespace xcg {

class EventLoop {
 public:
  using Clock = std::chrono::steady_clock;
  using FdHandler = std::function<void(uint32_t events)>;
  using TimerId = uint64_t;
  // Runs after a callback of the registration threw and the registration was removed.
  using OnFailure = std::function<void()>;

  EventLoop();  // throws std::system_error
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // `events` are EPOLLIN / EPOLLOUT; errors and hang-ups are always reported. `name` says
  // whose descriptor this is in the log line of a failure.
  void add(int fd, uint32_t events, std::string name, FdHandler handler, OnFailure on_failure = {});
  void modify(int fd, uint32_t events);
  void remove(int fd) noexcept;
  bool watching(int fd) const { return handlers_.contains(fd); }

  TimerId add_timer(std::chrono::milliseconds delay, std::string name, std::function<void()> fn,
                    OnFailure on_failure = {});
  void cancel_timer(TimerId id) noexcept;

  // Waits at most `timeout` (or until the next timer) and dispatches what is ready.
  void run_once(std::chrono::milliseconds timeout);
  // Runs until stop() is called.
  void run();
  void stop() { stopped_ = true; }
  bool stopped() const { return stopped_; }

  // Runs the loop until `done()` is true or `deadline` passes; returns done(). For tests.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds deadline);

 private:
  struct Entry {
    std::string name;
    FdHandler handler;
    OnFailure on_failure;
  };
  struct Timer {
    Clock::time_point when;
    std::string name;
    std::function<void()> fn;
    OnFailure on_failure;
  };
  void dispatch(int fd, uint32_t events);
  void fire_due_timers();
  void remove_entry(int fd, const std::shared_ptr<Entry>& entry) noexcept;
  int ms_to_next_timer(std::chrono::milliseconds cap) const;

  UniqueFd epoll_;
  std::unordered_map<int, std::shared_ptr<Entry>> handlers_;
  std::multimap<Clock::time_point, TimerId> timer_order_;
  std::unordered_map<TimerId, Timer> timers_;
  TimerId next_timer_ = 1;
  bool stopped_ = false;
};

}  // namespace xcg
