// The broker's lifecycle and SysRq actions, each of which may be a root toolstack process
// (`xl`) that takes seconds. They are serialised per domain (two `xl` runs on one domain race
// each other, and the second one's precondition is stale by the time the first is done) and
// at most `limit()` run at once; the rest wait in the order they came. Pure bookkeeping: the
// jobs do the work and say when they are done.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <set>
#include <string>

namespace xcg::gateway {

class ActionQueue {
 public:
  // A job calls it once, when its action is over (possibly before the job returns); further
  // calls do nothing.
  using Finished = std::function<void()>;
  using Job = std::function<void(Finished)>;

  // `limit` is asked each time a job could start, so a reload's new value counts at once.
  explicit ActionQueue(std::function<size_t()> limit) : limit_(std::move(limit)) {}

  // Starts `job` at once if its domain has nothing running and the cap allows, else later,
  // from the Finished of another job. `owner` (a session) may take it back while it waits.
  void submit(std::string domain, uint64_t owner, Job job);
  // Drops the waiting jobs of `owner` (its session is gone); returns how many. A job that has
  // started runs to its end.
  size_t cancel(uint64_t owner);

  size_t running() const { return busy_domains_.size(); }
  size_t waiting() const { return waiting_.size(); }

 private:
  struct Waiting {
    std::string domain;
    uint64_t owner;
    Job job;
  };
  void pump();
  Finished finisher(std::string domain);

  std::function<size_t()> limit_;
  std::deque<Waiting> waiting_;
  std::set<std::string> busy_domains_;  // one job per domain, so also the running count
  bool pumping_ = false;
};

}  // namespace xcg::gateway
