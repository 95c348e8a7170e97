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
    self = NodeInfo{advertised(cluster.advertise, parts_.listeners),
                    ed25519_host_key_fingerprint(host_keys_pem_, config_->host_keys), XCG_VERSION};
  }
  fleet_ = std::make_unique<FleetLink>(loop_, cluster, std::move(self));
  hubs_->set_presence_listener([this](const std::string& domain, HubDirectory::Presence presence) {
    fleet_->domain_presence(domain, presence);
  });
  if (cluster.role == config::ClusterRole::node) open_migrations();
  log::info("fleet: {} '{}' on etcd {}", cluster.role == config::ClusterRole::front ? "front" : "node",
            cluster.node, cluster.endpoints.front());
}

// A node leaves its fleet before it stops, so that fronts stop routing to it at once rather
// than when its lease runs out; an etcd that does not answer in time holds nothing up. A
// second signal stops at once.
void Broker::shut_down() {
  if (!fleet_ || leaving_) return loop_.stop();
  leaving_ = loop_.timer(kLeaveTimeout, "leaving the fleet", [this] {
    log::warn("fleet: etcd did not answer the lease's revocation within {} ms; stopping anyway",
              kLeaveTimeout.count());
    loop_.stop();
  });
  fleet_->leave([this] { loop_.stop(); });
}

}  // namespace xcg::gateway
