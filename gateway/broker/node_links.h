// A front's answer to node_connect_req: which node runs the session's domain (the directory),
// a connection to it (the connector), and what the customer reads when there is none.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "base/event_loop.h"
#include "base/unique_fd.h"
#include "gateway/broker/node_connector.h"
#include "gateway/broker/node_directory.h"
#include "gateway/ipc/ipc.h"

namespace xcg::gateway {

class NodeLinks {
 public:
  // The answer, and with ok the connected socket to pass along.
  using Done = std::function<void(ipc::NodeConnectAns, UniqueFd)>;
  static constexpr auto kConnectTimeout = std::chrono::seconds(5);
  // How long a session whose domain migrated away waits for the registry to name its new node.
  static constexpr auto kMoveTimeout = std::chrono::seconds(10);
  static constexpr auto kMovePoll = std::chrono::milliseconds(50);

  NodeLinks(EventLoop& loop, const NodeDirectory& directory,
            std::chrono::milliseconds timeout = kConnectTimeout,
            std::chrono::seconds move_timeout = kMoveTimeout)
      : loop_(loop), directory_(directory), connector_(loop, timeout), move_timeout_(move_timeout) {}

  // Calls `done` once, from the loop or (no route) at once.
  void open(const std::string& domain, Done done);
  // As open, once the directory routes `domain` to a node other than `moved_from`; an answer
  // that says so after the move timeout.
  void open_elsewhere(const std::string& domain, const std::string& moved_from, Done done);

 private:
  using Clock = std::chrono::steady_clock;
  void wait_elsewhere(const std::string& domain, const std::string& moved_from, Clock::time_point deadline,
                      Done done);

  EventLoop& loop_;
  const NodeDirectory& directory_;
  NodeConnector connector_;
  std::chrono::seconds move_timeout_;
  std::map<uint64_t, EventLoop::Timer> waits_;  // sessions waiting for their domain's new node
  uint64_t next_wait_ = 1;
};

}  // namespace xcg::gateway
