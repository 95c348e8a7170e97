// The broker in a fleet (docs/fleet.md): its etcd link, and on a node the registry kept in
// step with the node's domains.
#include "base/log.h"
#include "gateway/broker/broker.h"
#include "gateway/broker/host_keys.h"

namespace xcg::gateway {

namespace {

// The advertised address; one on port 0 (the kernel's pick) is the first SSH listener's.
std::string advertised(const std::string& advertise, const std::vector<Listener>& listeners) {
  if (!advertise.ends_with(":0")) return advertise;
  for (const auto& l : listeners)
    if (l.kind == ListenerKind::ssh) return l.address;
  return advertise;
}

}  // namespace

void Broker::start_fleet() {
  const auto& cluster = *config_->cluster;
  NodeInfo self;
  if (cluster.role == config::ClusterRole::node) {
    // Fronts pin the node's first host key.
    self = NodeInfo{advertised(cluster.advertise, parts_.listeners),
                    host_key_fingerprint(host_keys_pem_.at(0), config_->host_keys.at(0)), XCG_VERSION};
  }
  fleet_ = std::make_unique<FleetLink>(loop_, cluster, std::move(self));
  hubs_->set_presence_listener([this](const std::string& domain, HubDirectory::Presence presence) {
    fleet_->domain_presence(domain, presence);
  });
  log::info("fleet: {} '{}' on etcd {}", cluster.role == config::ClusterRole::front ? "front" : "node",
            cluster.node, cluster.endpoints.front());
}

}  // namespace xcg::gateway
