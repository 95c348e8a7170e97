#include "base/event_loop.h"

#include <cerrno>
#include <system_error>
#include <vector>

namespace xcg {

EventLoop::EventLoop() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (!epoll_) throw std::system_error(errno, std::generic_category(), "epoll_create1");
}

void EventLoop::add(int fd, uint32_t events, FdHandler handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl add");
  handlers_[fd] = std::make_shared<Entry>(Entry{std::move(handler)});
}

void EventLoop::modify(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl mod");
}

void EventLoop::remove(int fd) noexcept {
  if (handlers_.erase(fd) == 0) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);  // fails harmlessly if fd is closed
}

EventLoop::TimerId EventLoop::add_timer(std::chrono::milliseconds delay, std::function<void()> fn) {
  TimerId id = next_timer_++;
  auto when = Clock::now() + delay;
  timers_.emplace(id, std::make_pair(when, std::move(fn)));
  timer_order_.emplace(when, id);
  return id;
}

void EventLoop::cancel_timer(TimerId id) noexcept {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  auto [lo, hi] = timer_order_.equal_range(it->second.first);
  for (auto o = lo; o != hi; ++o) {
    if (o->second == id) {
      timer_order_.erase(o);
      break;
    }
  }
  timers_.erase(it);
}

int EventLoop::ms_to_next_timer(std::chrono::milliseconds cap) const {
  if (timer_order_.empty()) return static_cast<int>(cap.count());
  auto wait = std::chrono::ceil<std::chrono::milliseconds>(timer_order_.begin()->first - Clock::now());
  if (wait.count() < 0) return 0;
  return static_cast<int>(std::min(wait, cap).count());
}

void EventLoop::fire_due_timers() {
  auto now = Clock::now();
  while (!timer_order_.empty() && timer_order_.begin()->first <= now) {
    TimerId id = timer_order_.begin()->second;
    timer_order_.erase(timer_order_.begin());
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;
    auto fn = std::move(it->second.second);
    timers_.erase(it);
    fn();
  }
}

void EventLoop::run_once(std::chrono::milliseconds timeout) {
  epoll_event events[64];
  int n = ::epoll_wait(epoll_.get(), events, 64, ms_to_next_timer(timeout));
  if (n < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "epoll_wait");
  for (int i = 0; i < n; ++i) {
    auto it = handlers_.find(events[i].data.fd);
    if (it == handlers_.end()) continue;  // removed by an earlier callback in this batch
    auto entry = it->second;              // keeps the handler alive while it runs
    entry->handler(events[i].events);
  }
  fire_due_timers();
}

void EventLoop::run() {
  stopped_ = false;
  while (!stopped_) run_once(std::chrono::milliseconds(60'000));
}

bool EventLoop::run_until(const std::function<bool()>& done, std::chrono::milliseconds deadline) {
  auto end = Clock::now() + deadline;
  while (!done()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
    if (left.count() <= 0) return done();
    run_once(std::min(left, std::chrono::milliseconds(50)));
  }
  return true;
}

}  // namespace xcg
