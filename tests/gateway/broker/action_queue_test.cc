#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "gateway/broker/action_queue.h"

using xcg::gateway::ActionQueue;

namespace {

// Jobs that stay running until the test finishes them by name.
struct Harness {
  size_t limit = 2;
  ActionQueue queue{[this] { return limit; }};
  std::vector<std::string> started;
  std::map<std::string, ActionQueue::Finished> running;

  void submit(const std::string& domain, const std::string& name, uint64_t owner = 0) {
    queue.submit(domain, owner, [this, name](ActionQueue::Finished done) {
      started.push_back(name);
      running.emplace(name, std::move(done));
    });
  }
  void finish(const std::string& name) {
    auto done = std::move(running.at(name));
    running.erase(name);
    done();
  }
};

}  // namespace

TEST_CASE("one action per domain at a time, the next when the previous is done", "[action_queue]") {
  Harness h;
  h.submit("web1", "a");
  h.submit("web1", "b");
  CHECK(h.started == std::vector<std::string>{"a"});
  CHECK(h.queue.waiting() == 1);
  h.finish("a");
  CHECK(h.started == std::vector<std::string>{"a", "b"});
  CHECK(h.queue.waiting() == 0);
}

TEST_CASE("no more than the limit run at once; the rest start in order as slots free", "[action_queue]") {
  Harness h;
  h.submit("web1", "a");
  h.submit("web2", "b");
  h.submit("web3", "c");
  h.submit("web4", "d");
  CHECK(h.started == std::vector<std::string>{"a", "b"});
  CHECK(h.queue.running() == 2);
  h.finish("b");
  CHECK(h.started == std::vector<std::string>{"a", "b", "c"});
  CHECK(h.queue.running() == 2);
  h.finish("a");
  CHECK(h.started == std::vector<std::string>{"a", "b", "c", "d"});
}

TEST_CASE("a free slot goes to the oldest job whose domain is idle", "[action_queue]") {
  Harness h;
  h.submit("web1", "a");
  h.submit("web2", "b");
  h.submit("web1", "a2");  // waits for a, not for a slot
  h.submit("web3", "c");
  h.finish("b");
  CHECK(h.started == std::vector<std::string>{"a", "b", "c"});
  h.finish("a");
  CHECK(h.started == std::vector<std::string>{"a", "b", "c", "a2"});
}

TEST_CASE("jobs that finish before they return let the next ones start", "[action_queue]") {
  size_t limit = 1;
  ActionQueue queue{[&] { return limit; }};
  int ran = 0;
  for (int i = 0; i < 100; ++i)
    queue.submit("web1", 0, [&](const ActionQueue::Finished& done) {
      ++ran;
      done();
      done();  // a second call changes nothing
    });
  CHECK(ran == 100);
  CHECK(queue.running() == 0);
  CHECK(queue.waiting() == 0);
}

TEST_CASE("cancel drops an owner's waiting jobs, not its running one", "[action_queue]") {
  Harness h;
  h.submit("web1", "a", 7);
  h.submit("web1", "b", 7);
  h.submit("web1", "c", 8);
  CHECK(h.queue.cancel(7) == 1);
  h.finish("a");
  CHECK(h.started == std::vector<std::string>{"a", "c"});
}

TEST_CASE("a changed limit counts from the next submission or finish", "[action_queue]") {
  Harness h;
  h.limit = 1;
  h.submit("web1", "a");
  h.submit("web2", "b");
  h.submit("web3", "c");
  CHECK(h.started.size() == 1);
  h.limit = 3;
  h.submit("web4", "d");
  CHECK(h.started == std::vector<std::string>{"a", "b", "c"});
  h.limit = 1;  // lowered: running jobs go on, nothing new starts until below it
  h.finish("a");
  h.finish("b");
  CHECK(h.started.size() == 3);
  h.finish("c");
  CHECK(h.started == std::vector<std::string>{"a", "b", "c", "d"});
}
