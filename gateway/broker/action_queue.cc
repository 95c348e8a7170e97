#include "gateway/broker/action_queue.h"

#include <algorithm>
#include <memory>

namespace xcg::gateway {

void ActionQueue::submit(std::string domain, uint64_t owner, Job job) {
  waiting_.push_back(Waiting{std::move(domain), owner, std::move(job)});
  pump();
}

size_t ActionQueue::cancel(uint64_t owner) {
  return std::erase_if(waiting_, [owner](const Waiting& w) { return w.owner == owner; });
}

// Starts what may start, oldest first. A job may finish (and so call pump again) or cancel
// others before it returns: no iterator is held across a job, and a nested pump leaves the
// work to this one.
void ActionQueue::pump() {
  if (pumping_) return;
  pumping_ = true;
  auto startable = [this](const Waiting& w) { return !busy_domains_.contains(w.domain); };
  for (;;) {
    if (busy_domains_.size() >= limit_()) break;
    auto it = std::find_if(waiting_.begin(), waiting_.end(), startable);
    if (it == waiting_.end()) break;
    Waiting next = std::move(*it);
    waiting_.erase(it);
    busy_domains_.insert(next.domain);
    next.job(finisher(next.domain));
  }
  pumping_ = false;
}

ActionQueue::Finished ActionQueue::finisher(std::string domain) {
  auto called = std::make_shared<bool>(false);
  return [this, domain = std::move(domain), called] {
    if (*called) return;
    *called = true;
    busy_domains_.erase(domain);
    pump();
  };
}

}  // namespace xcg::gateway
