#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <set>

#include <catch2/catch.hpp>

#include "base/child.h"
#include "base/event_loop.h"
#include "gateway/broker/spare_pool.h"

using namespace std::chrono_literals;
using xcg::EventLoop;
using xcg::gateway::SparePool;
using xcg::gateway::SpawnedSession;

namespace {

// Parked "sessions" that only wait to be killed.
xcg::Result<SpawnedSession> start_sleeper() {
  auto child = xcg::start_child([] {
    ::pause();
    ::_exit(0);
  });
  if (!child) return tl::unexpected(child.error());
  return SpawnedSession{std::move(*child), xcg::UniqueFd()};
}

bool alive(pid_t pid) { return ::kill(pid, 0) == 0; }

}  // namespace

TEST_CASE("spare pool: fills to its target, hands out each spare once and refills") {
  EventLoop loop;
  SparePool pool(loop, start_sleeper);
  pool.set_target(2);
  CHECK(pool.parked() == 0);  // started from the loop, not by the caller
  REQUIRE(loop.run_until([&] { return pool.parked() == 2; }, 5000ms));
  auto first = pool.pids();
  auto taken = pool.take();
  REQUIRE(taken);
  CHECK(taken->child.pid == first.front());  // the oldest
  CHECK(pool.parked() == 1);
  REQUIRE(loop.run_until([&] { return pool.parked() == 2; }, 5000ms));
  auto now = pool.pids();
  CHECK(std::set(now.begin(), now.end()).count(taken->child.pid) == 0);
  xcg::kill_and_reap(taken->child.pid);
}

TEST_CASE("spare pool: a spare that dies while parked is replaced, and skipped when taken") {
  EventLoop loop;
  SparePool pool(loop, start_sleeper);
  pool.set_target(1);
  REQUIRE(loop.run_until([&] { return pool.parked() == 1; }, 5000ms));
  pid_t victim = pool.pids().front();
  REQUIRE(::kill(victim, SIGKILL) == 0);
  REQUIRE(loop.run_until([&] { return pool.parked() == 1 && pool.pids().front() != victim; }, 5000ms));
  // Dead, and the loop has not seen it yet: take() must not hand it out.
  pid_t next = pool.pids().front();
  REQUIRE(::kill(next, SIGKILL) == 0);
  siginfo_t info{};
  for (auto until = std::chrono::steady_clock::now() + 5s;
       info.si_pid == 0 && std::chrono::steady_clock::now() < until;)
    REQUIRE(::waitid(P_PID, next, &info, WEXITED | WNOWAIT | WNOHANG) == 0);
  REQUIRE(info.si_pid == next);
  CHECK_FALSE(pool.take());
}

TEST_CASE("spare pool: a program that cannot start is retried with a growing back-off") {
  EventLoop loop;
  int starts = 0;
  SparePool pool(loop, [&]() -> xcg::Result<SpawnedSession> {
    ++starts;
    return xcg::fail(xcg::Errc::invalid_input, "no such program");
  });
  pool.set_target(4);
  // 100 + 200 + 400 + 800 ms: at most 5 tries in 1.6 s, where a spinning pool would make thousands.
  loop.run_until([] { return false; }, 1600ms);
  CHECK(starts >= 3);
  CHECK(starts <= 5);
  CHECK(pool.parked() == 0);
}

TEST_CASE("spare pool: a smaller target stops spares at once; the pool's end stops the rest") {
  EventLoop loop;
  std::vector<pid_t> all;
  {
    SparePool pool(loop, start_sleeper);
    pool.set_target(3);
    REQUIRE(loop.run_until([&] { return pool.parked() == 3; }, 5000ms));
    all = pool.pids();
    pool.set_target(1);
    CHECK(pool.parked() == 1);
    CHECK(pool.pids().front() == all.front());  // the oldest kept
    CHECK_FALSE(alive(all[1]));
    CHECK_FALSE(alive(all[2]));
  }
  CHECK_FALSE(alive(all[0]));
}
