#include "base/event_loop.h"

#include <cerrno>
#include <cstdlib>
#include <exception>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include "base/log.h"

namespace xcg {
namespace {

// Runs `fn`; returns what it threw, if it threw.
std::optional<std::string> contained(const std::function<void()>& fn) {
  try {
    fn();
    return std::nullopt;
  } catch (const std::exception& e) {
    return std::string(e.what());
  } catch (...) {
    return std::string("an exception of unknown type");
  }
}

#ifdef XCG_TEST_HOOKS
// Built only with meson -Dtest_hooks=true (./dev's test builds, never a package):
// XCG_TEST_THROW_IN=NAME makes every callback of the registration named NAME throw, so that
// the integration tests can show a real broker surviving a failing handler.
const char* test_hook_target() {
  static const char* target = [] {
    const char* t = std::getenv("XCG_TEST_THROW_IN");
    if (t && *t) log::warn("test hook: callbacks of '{}' will throw", t);
    return t && *t ? t : nullptr;
  }();
  return target;
}

void test_hook(const std::string& name) {
  if (const char* target = test_hook_target(); target && name == target)
    throw std::runtime_error("thrown by the test hook");
}
#else
void test_hook(const std::string&) {}
#endif

void report_failure(const std::string& name, const std::string& what,
                    const EventLoop::OnFailure& on_failure) {
  log::error("{} failed: {}; removed from the event loop", name, what);
  if (!on_failure) return;
  if (auto again = contained(on_failure))
    log::error("{}: cleaning up after the failure failed too: {}", name, *again);
}

}  // namespace

EventLoop::EventLoop() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (!epoll_) throw std::system_error(errno, std::generic_category(), "epoll_create1");
#ifdef XCG_TEST_HOOKS
  (void)test_hook_target();  // says so at start-up, before anyone waits on the log
#endif
}

void EventLoop::add(int fd, uint32_t events, std::string name, FdHandler handler, OnFailure on_failure) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl add");
  handlers_[fd] = std::make_shared<Entry>(
      Entry{next_registration_++, std::move(name), std::move(handler), std::move(on_failure)});
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

// Only if `fd` still has this entry: the handler may have removed itself and a new
// registration may have taken the same descriptor number since.
void EventLoop::remove_entry(int fd, const std::shared_ptr<Entry>& entry) noexcept {
  auto it = handlers_.find(fd);
  if (it != handlers_.end() && it->second == entry) remove(fd);
}

EventLoop::Watch EventLoop::watch(int fd, uint32_t events, std::string name, FdHandler handler,
                                  OnFailure on_failure) {
  add(fd, events, std::move(name), std::move(handler), std::move(on_failure));
  return Watch(*this, fd);
}

EventLoop::Timer EventLoop::timer(std::chrono::milliseconds delay, std::string name, std::function<void()> fn,
                                  OnFailure on_failure) {
  return Timer(*this, add_timer(delay, std::move(name), std::move(fn), std::move(on_failure)));
}

uint64_t EventLoop::registration_of(int fd) const {
  auto it = handlers_.find(fd);
  return it == handlers_.end() ? 0 : it->second->registration;
}

void EventLoop::remove_if_still(int fd, uint64_t registration) noexcept {
  if (registration != 0 && registration_of(fd) == registration) remove(fd);
}

EventLoop::Watch& EventLoop::Watch::operator=(Watch&& o) noexcept {
  if (this == &o) return *this;
  reset();
  loop_ = std::exchange(o.loop_, nullptr);
  fd_ = std::exchange(o.fd_, -1);
  registration_ = std::exchange(o.registration_, 0);
  return *this;
}

void EventLoop::Watch::reset() noexcept {
  if (loop_) loop_->remove_if_still(fd_, registration_);
  loop_ = nullptr;
}

EventLoop::Timer& EventLoop::Timer::operator=(Timer&& o) noexcept {
  if (this == &o) return *this;
  reset();
  loop_ = std::exchange(o.loop_, nullptr);
  id_ = std::exchange(o.id_, 0);
  return *this;
}

void EventLoop::Timer::reset() noexcept {
  if (loop_) loop_->cancel_timer(id_);
  loop_ = nullptr;
}

EventLoop::TimerId EventLoop::add_timer(std::chrono::milliseconds delay, std::string name,
                                        std::function<void()> fn, OnFailure on_failure) {
  TimerId id = next_timer_++;
  auto when = Clock::now() + delay;
  timers_.emplace(id, PendingTimer{when, std::move(name), std::move(fn), std::move(on_failure)});
  timer_order_.emplace(when, id);
  return id;
}

void EventLoop::cancel_timer(TimerId id) noexcept {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  auto [lo, hi] = timer_order_.equal_range(it->second.when);
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
    PendingTimer timer = std::move(it->second);
    timers_.erase(it);
    if (auto failed = contained([&] {
          test_hook(timer.name);
          timer.fn();
        }))
      report_failure(timer.name, *failed, timer.on_failure);
  }
}

void EventLoop::dispatch(int fd, uint32_t events) {
  auto it = handlers_.find(fd);
  if (it == handlers_.end()) return;  // removed by an earlier callback in this batch
  auto entry = it->second;            // keeps the handler alive while it runs
  auto failed = contained([&] {
    test_hook(entry->name);
    entry->handler(events);
  });
  if (!failed) return;
  remove_entry(fd, entry);
  report_failure(entry->name, *failed, entry->on_failure);
}

void EventLoop::run_once(std::chrono::milliseconds timeout) {
  epoll_event events[64];
  int n = ::epoll_wait(epoll_.get(), events, 64, ms_to_next_timer(timeout));
  if (n < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "epoll_wait");
  for (int i = 0; i < n; ++i) dispatch(events[i].data.fd, events[i].events);
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
