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

}  // namespace xcg::gateway
