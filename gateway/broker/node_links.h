// A front's answer to node_connect_req: which node runs the session's domain (the directory),
// a connection to it (the connector), and what the customer reads when there is none.
#pragma once

#include <chrono>
#include <functional>
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

  NodeLinks(EventLoop& loop, const NodeDirectory& directory,
            std::chrono::milliseconds timeout = kConnectTimeout)
      : directory_(directory), connector_(loop, timeout) {}

  // Calls `done` once, from the loop or (no route) at once.
  void open(const std::string& domain, Done done);

 private:
  const NodeDirectory& directory_;
  NodeConnector connector_;
};

}  // namespace xcg::gateway
