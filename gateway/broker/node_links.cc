#include "gateway/broker/node_links.h"

#include <fmt/format.h>

#include "base/log.h"

namespace xcg::gateway {

void NodeLinks::open(const std::string& domain, Done done) {
  auto route = directory_.route(domain);
  if (!route)
    return done(ipc::NodeConnectAns{false, fmt::format("{} is not running on any node", domain), "", ""}, {},
                0);
  connector_.connect(*route, [route = *route, done = std::move(done)](Result<UniqueFd> fd) {
    if (!fd) {
      // The customer learns which node; the operator, why.
      log::info("node {} ({}:{}): {}", route.node, route.host, route.port, fd.error().message);
      return done(ipc::NodeConnectAns{false, route.node + " unreachable", route.node, ""}, {},
                  route.revision);
    }
    done(ipc::NodeConnectAns{true, "", route.node, route.host_key_fingerprint}, std::move(*fd),
         route.revision);
  });
}

void NodeLinks::open_elsewhere(const std::string& domain, const std::string& moved_from,
                               int64_t left_revision, Done done) {
  wait_elsewhere(Departure{domain, moved_from, left_revision, Clock::now() + move_timeout_}, std::move(done));
}

// The registry changes by its watches, on this loop: looking again every kMovePoll is cheap.
void NodeLinks::wait_elsewhere(Departure left, Done done) {
  auto route = directory_.route(left.domain);
  if (route && (route->node != left.node || route->revision > left.revision))
    return open(left.domain, std::move(done));
  if (Clock::now() >= left.deadline) {
    auto why = fmt::format("{} left {} and did not appear on any node within {} s", left.domain, left.node,
                           move_timeout_.count());
    return done(ipc::NodeConnectAns{false, why, left.node, ""}, {}, 0);
  }
  uint64_t id = next_wait_++;
  std::string name = "waiting for the new node of " + left.domain;
  waits_[id] =
      loop_.timer(kMovePoll, name, [this, id, left = std::move(left), done = std::move(done)]() mutable {
        waits_.erase(id);  // fired: its callback is already ours
        wait_elsewhere(std::move(left), std::move(done));
      });
}

}  // namespace xcg::gateway
