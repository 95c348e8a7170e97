// The event loop's error contract: a callback that throws ends only its own registration.
#include <sys/eventfd.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "base/event_loop.h"
#include "base/log.h"

using namespace xcg;
using namespace std::chrono_literals;

namespace {

struct ErrorLog {
  std::vector<std::string> lines;
  ErrorLog() {
    log::set_sink([this](log::Level level, std::string_view line) {
      if (level == log::Level::error) lines.emplace_back(line);
    });
  }
  ~ErrorLog() { log::set_sink(nullptr); }
  bool has(const std::string& a, const std::string& b) const {
    for (const auto& l : lines)
      if (l.find(a) != std::string::npos && l.find(b) != std::string::npos) return true;
    return false;
  }
};

// An eventfd that is always readable until closed: its handler runs on every loop step.
UniqueFd ready_fd() {
  UniqueFd fd(::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC));
  REQUIRE(fd);
  return fd;
}

}  // namespace

TEST_CASE("a throwing fd handler is logged by name, dropped, and the loop goes on", "[event_loop]") {
  ErrorLog errors;
  EventLoop loop;
  UniqueFd bad = ready_fd(), good = ready_fd();
  int bad_calls = 0, good_calls = 0, failures = 0;
  loop.add(
      bad.get(), EPOLLIN, "session 12 ipc",
      [&](uint32_t) {
        ++bad_calls;
        throw std::runtime_error("bad frame");
      },
      [&] { ++failures; });
  loop.add(good.get(), EPOLLIN, "hub web1", [&](uint32_t) { ++good_calls; });

  REQUIRE_NOTHROW(loop.run_once(100ms));
  REQUIRE_NOTHROW(loop.run_once(100ms));
  CHECK(bad_calls == 1);  // removed after its failure, although still readable
  CHECK(failures == 1);
  CHECK_FALSE(loop.watching(bad.get()));
  CHECK(loop.watching(good.get()));
  CHECK(good_calls == 2);
  CHECK(errors.has("session 12 ipc", "bad frame"));
}

TEST_CASE("a throwing timer is logged by name, its on_failure runs, other timers fire", "[event_loop]") {
  ErrorLog errors;
  EventLoop loop;
  bool failed = false, later_fired = false;
  loop.add_timer(
      0ms, "reboot window web1", [] { throw std::logic_error("no such hub"); }, [&] { failed = true; });
  loop.add_timer(0ms, "config reload", [&] { later_fired = true; });
  REQUIRE_NOTHROW(loop.run_once(100ms));
  CHECK(failed);
  CHECK(later_fired);
  CHECK(errors.has("reboot window web1", "no such hub"));
}

TEST_CASE("an on_failure that throws too is contained and logged", "[event_loop]") {
  ErrorLog errors;
  EventLoop loop;
  UniqueFd bad = ready_fd();
  loop.add(
      bad.get(), EPOLLIN, "control client", [](uint32_t) { throw 42; },
      [] { throw std::runtime_error("cleanup broke"); });
  REQUIRE_NOTHROW(loop.run_once(100ms));
  CHECK_FALSE(loop.watching(bad.get()));
  CHECK(errors.has("control client", "unknown type"));
  CHECK(errors.has("control client", "cleanup broke"));
}

TEST_CASE("a handler that failed after replacing its own registration leaves the new one", "[event_loop]") {
  ErrorLog errors;
  EventLoop loop;
  UniqueFd fd = ready_fd();
  int second_calls = 0;
  loop.add(fd.get(), EPOLLIN, "first", [&](uint32_t) {
    loop.remove(fd.get());
    loop.add(fd.get(), EPOLLIN, "second", [&](uint32_t) { ++second_calls; });
    throw std::runtime_error("after re-registering");
  });
  REQUIRE_NOTHROW(loop.run_once(100ms));
  REQUIRE(loop.watching(fd.get()));
  loop.run_once(100ms);
  CHECK(second_calls == 1);
}

TEST_CASE("a watch handle ends its registration with it", "[event_loop]") {
  EventLoop loop;
  UniqueFd fd = ready_fd();
  int calls = 0;
  {
    auto watch = loop.watch(fd.get(), EPOLLIN, "viewer", [&](uint32_t) { ++calls; });
    CHECK(loop.watching(fd.get()));
    loop.run_once(100ms);
  }
  CHECK_FALSE(loop.watching(fd.get()));
  loop.run_once(10ms);
  CHECK(calls == 1);
}

TEST_CASE("a stale watch handle leaves a newer registration of the same descriptor alone", "[event_loop]") {
  ErrorLog errors;
  EventLoop loop;
  UniqueFd fd = ready_fd();
  auto stale = loop.watch(fd.get(), EPOLLIN, "first", [](uint32_t) { throw std::runtime_error("dropped"); });
  loop.run_once(100ms);  // the loop dropped the first registration
  REQUIRE_FALSE(loop.watching(fd.get()));
  auto fresh = loop.watch(fd.get(), EPOLLIN, "second", [](uint32_t) {});
  stale.reset();
  CHECK(loop.watching(fd.get()));
  fresh = EventLoop::Watch();  // moved-over handles end theirs
  CHECK_FALSE(loop.watching(fd.get()));
}

TEST_CASE("a timer handle cancels its timer with it, and moving it keeps it", "[event_loop]") {
  EventLoop loop;
  bool dropped_fired = false, kept_fired = false;
  {
    auto dropped = loop.timer(0ms, "dropped", [&] { dropped_fired = true; });
  }
  auto kept = loop.timer(0ms, "kept", [&] { kept_fired = true; });
  EventLoop::Timer moved = std::move(kept);
  loop.run_once(50ms);
  CHECK_FALSE(dropped_fired);
  CHECK(kept_fired);
}
