// TCP connections from the broker's loop to nodes, without blocking it: a non-blocking connect,
// its completion watched on the loop, given up after a timeout. Sessions cannot open sockets
// (their seccomp filter has no socket or connect), so a front's broker connects for them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "base/error.h"
#include "base/event_loop.h"
#include "base/unique_fd.h"
#include "gateway/broker/node_directory.h"

namespace xcg::gateway {

class NodeConnector {
 public:
  // The connected socket (non-blocking), or why not.
  using Done = std::function<void(Result<UniqueFd>)>;

  NodeConnector(EventLoop& loop, std::chrono::milliseconds timeout) : loop_(loop), timeout_(timeout) {}

  // Calls `done` once, from the loop, never before connect() returns.
  void connect(const NodeRoute& route, Done done);
  size_t pending() const { return pending_.size(); }

 private:
  struct Pending {
    UniqueFd fd;
    Done done;
    EventLoop::Watch watch;
    EventLoop::Timer timer;
  };
  void start(uint64_t id, const NodeRoute& route);
  void on_writable(uint64_t id);
  void finish(uint64_t id, Result<UniqueFd> result);

  EventLoop& loop_;
  std::chrono::milliseconds timeout_;
  std::map<uint64_t, Pending> pending_;
  uint64_t next_id_ = 1;
};

}  // namespace xcg::gateway
