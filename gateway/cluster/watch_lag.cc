#include "gateway/cluster/watch_lag.h"

namespace xcg {

void WatchLag::probed(int64_t store_revision, int64_t applied, Clock::time_point now) {
  if (store_revision <= applied) return;
  if (!pending_.empty() && pending_.back().first >= store_revision) return;
  if (pending_.size() == kMaxPending) {
    pending_.back().first = store_revision;
    return;
  }
  pending_.emplace_back(store_revision, now);
}

void WatchLag::applied(int64_t revision) {
  while (!pending_.empty() && pending_.front().first <= revision) pending_.pop_front();
}

double WatchLag::seconds(Clock::time_point now) const {
  if (pending_.empty()) return 0;
  return std::chrono::duration<double>(now - pending_.front().second).count();
}

}  // namespace xcg
