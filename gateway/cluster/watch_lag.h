// How far a watch is behind the store, as a time (xcg_etcd_watch_lag_seconds): from the first
// probe that found the store at a revision the watch had not applied, until the watch has
// applied that revision. The store's revision moves with writes anywhere in etcd, so a watch on
// an idle prefix learns that it has caught up only from etcd's progress notifications
// (docs/metrics.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <utility>

namespace xcg {

class WatchLag {
 public:
  using Clock = std::chrono::steady_clock;
  // A probe found the store at `store_revision` while the watch had applied up to `applied`.
  void probed(int64_t store_revision, int64_t applied, Clock::time_point now);
  // The watch has applied every change up to `revision`.
  void applied(int64_t revision);
  // 0 once the watch has applied every revision a probe found.
  double seconds(Clock::time_point now) const;

 private:
  // A stuck watch probed for days keeps this many; the last then stands for all that came
  // after it, with its earlier time, so the lag errs on the long side.
  static constexpr size_t kMaxPending = 64;
  std::deque<std::pair<int64_t, Clock::time_point>> pending_;  // revisions found ahead, oldest first
};

}  // namespace xcg
