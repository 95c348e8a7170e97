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

  class Watch;
  class Timer;
  // The owned forms of add and add_timer: the registration ends when the handle does, so an
  // owner's registrations cannot outlive it. The loop must outlive its handles.
  [[nodiscard]] Watch watch(int fd, uint32_t events, std::string name, FdHandler handler,
                            OnFailure on_failure = {});
  [[nodiscard]] Timer timer(std::chrono::milliseconds delay, std::string name, std::function<void()> fn,
                            OnFailure on_failure = {});

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
    uint64_t registration;  // unique per add(): tells a descriptor number's registrations apart
    std::string name;
    FdHandler handler;
    OnFailure on_failure;
  };
  struct PendingTimer {
    Clock::time_point when;
    std::string name;
    std::function<void()> fn;
    OnFailure on_failure;
  };
  void dispatch(int fd, uint32_t events);
  void fire_due_timers();
  void remove_entry(int fd, const std::shared_ptr<Entry>& entry) noexcept;
  int ms_to_next_timer(std::chrono::milliseconds cap) const;

  // For Watch: removes `fd`'s registration only if it is still `entry`'s.
  void remove_if_still(int fd, uint64_t registration) noexcept;
  uint64_t registration_of(int fd) const;  // 0 if none

  UniqueFd epoll_;
  std::unordered_map<int, std::shared_ptr<Entry>> handlers_;
  std::multimap<Clock::time_point, TimerId> timer_order_;
  std::unordered_map<TimerId, PendingTimer> timers_;
  TimerId next_timer_ = 1;
  uint64_t next_registration_ = 1;
  bool stopped_ = false;
};

// A descriptor's registration, removed when the handle is destroyed or reset. A registration
// the loop already dropped (its handler threw) is left alone, as is a later registration of
// the same descriptor number by someone else.
class EventLoop::Watch {
 public:
  Watch() = default;
  Watch(EventLoop& loop, int fd) : loop_(&loop), fd_(fd), registration_(loop.registration_of(fd)) {}
  Watch(Watch&& o) noexcept { *this = std::move(o); }
  Watch& operator=(Watch&& o) noexcept;
  ~Watch() { reset(); }
  void reset() noexcept;
  explicit operator bool() const { return loop_ != nullptr; }

 private:
  EventLoop* loop_ = nullptr;
  int fd_ = -1;
  uint64_t registration_ = 0;
};

// A pending one-shot timer, cancelled when the handle is destroyed or reset.
class EventLoop::Timer {
 public:
  Timer() = default;
  Timer(EventLoop& loop, TimerId id) : loop_(&loop), id_(id) {}
  Timer(Timer&& o) noexcept { *this = std::move(o); }
  Timer& operator=(Timer&& o) noexcept;
  ~Timer() { reset(); }
  void reset() noexcept;
  explicit operator bool() const { return loop_ != nullptr; }

 private:
  EventLoop* loop_ = nullptr;
  TimerId id_ = 0;
};

}  // namespace xcg
