// Spare sessions: xcg-session processes exec'd ahead of time and parked, each waiting for its
// hello, so that an accepted connection skips the exec and the dynamic loader. The broker hands
// a spare the connection with the hello; the spare is then an ordinary session, never returned
// here, and another is started to replace it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "base/event_loop.h"
#include "gateway/broker/session_spawner.h"

namespace xcg::gateway {

class SparePool {
 public:
  // Starts a parked session: a spawner's spawn() without a connection.
  using Start = std::function<Result<SpawnedSession>()>;
  // A spare that died while parked is replaced after this back-off, doubled for each death in a
  // row up to kMaxBackoff, so that a session program that crashes does not spin the broker.
  static constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
  static constexpr auto kMaxBackoff = std::chrono::milliseconds(30'000);

  SparePool(EventLoop& loop, Start start);
  ~SparePool();  // SIGKILLs and reaps the parked spares
  SparePool(const SparePool&) = delete;
  SparePool& operator=(const SparePool&) = delete;

  // How many to keep parked (limits.spare_sessions): extra spares are stopped at once, missing
  // ones started from the event loop, one per turn.
  void set_target(unsigned n);
  // A live parked spare, now the caller's, or nothing when none is parked. Its replacement
  // starts from the event loop, after the caller is done with this connection.
  std::optional<SpawnedSession> take();
  size_t parked() const { return parked_.size(); }
  std::vector<pid_t> pids() const;

 private:
  struct Parked {
    SpawnedSession session;
    EventLoop::Watch exit_watch;  // after the pidfd it watches: ends first
  };
  void schedule_refill(std::chrono::milliseconds delay);
  void refill();
  void start_one();
  void on_exit(uint64_t id);
  // A spare died or could not start: the next start waits longer.
  void back_off();
  void stop(Parked& p) noexcept;

  EventLoop& loop_;
  Start start_;
  unsigned target_ = 0;
  std::map<uint64_t, Parked> parked_;  // oldest first
  uint64_t next_id_ = 1;
  std::chrono::milliseconds backoff_{0};
  EventLoop::Timer refill_timer_;
};

}  // namespace xcg::gateway
