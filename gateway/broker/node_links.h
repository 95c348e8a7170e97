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
  // The answer, and with ok the connected socket to pass along and the revision of the route
  // (NodeRoute::revision) it followed.
  using Done = std::function<void(ipc::NodeConnectAns, UniqueFd, int64_t revision)>;
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
  // As open, once the directory routes `domain` to a node other than `moved_from`, or to it
  // again with a record newer than `left_revision` (the domain came back to it); an answer that
  // says so after the move timeout.
  void open_elsewhere(const std::string& domain, const std::string& moved_from, int64_t left_revision,
                      Done done);

 private:
  using Clock = std::chrono::steady_clock;
  struct Departure {
    std::string domain;
    std::string node;  // the node it left
    int64_t revision;  // of the record that routed it there
    Clock::time_point deadline;
  };
  void wait_elsewhere(Departure left, Done done);

  EventLoop& loop_;
  const NodeDirectory& directory_;
  NodeConnector connector_;
  std::chrono::seconds move_timeout_;
  std::map<uint64_t, EventLoop::Timer> waits_;  // sessions waiting for their domain's new node
  uint64_t next_wait_ = 1;
};

}  // namespace xcg::gateway
