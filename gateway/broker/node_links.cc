#include "gateway/broker/node_links.h"

#include <fmt/format.h>

#include "base/log.h"

namespace xcg::gateway {

void NodeLinks::open(const std::string& domain, Done done) {
  auto route = directory_.route(domain);
  if (!route)
    return done(ipc::NodeConnectAns{false, fmt::format("{} is not running on any node", domain), "", ""}, {});
  connector_.connect(*route, [route = *route, done = std::move(done)](Result<UniqueFd> fd) {
    if (!fd) {
      // The customer learns which node; the operator, why.
      log::info("node {} ({}:{}): {}", route.node, route.host, route.port, fd.error().message);
      return done(ipc::NodeConnectAns{false, route.node + " unreachable", route.node, ""}, {});
    }
    done(ipc::NodeConnectAns{true, "", route.node, route.host_key_fingerprint}, std::move(*fd));
  });
}

void NodeLinks::open_elsewhere(const std::string& domain, const std::string& moved_from, Done done) {
  wait_elsewhere(domain, moved_from, Clock::now() + move_timeout_, std::move(done));
}

// The registry changes by its watches, on this loop: looking again every kMovePoll is cheap.
void NodeLinks::wait_elsewhere(const std::string& domain, const std::string& moved_from,
                               Clock::time_point deadline, Done done) {
  auto route = directory_.route(domain);
  if (route && route->node != moved_from) return open(domain, std::move(done));
  if (Clock::now() >= deadline) {
    auto why = fmt::format("{} left {} and did not appear on another node within {} s", domain, moved_from,
                           move_timeout_.count());
    return done(ipc::NodeConnectAns{false, why, moved_from, ""}, {});
  }
  uint64_t id = next_wait_++;
  waits_[id] = loop_.timer(kMovePoll, "waiting for the new node of " + domain,
                           [this, id, domain, moved_from, deadline, done = std::move(done)]() mutable {
                             waits_.erase(id);  // fired: its callback is already ours
                             wait_elsewhere(domain, moved_from, deadline, std::move(done));
                           });
}

}  // namespace xcg::gateway
