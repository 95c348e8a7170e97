#include "gateway/broker/fleet_link.h"

#include <utility>

#include "gateway/cluster/etcd_config.h"

namespace xcg::gateway {

FleetLink::FleetLink(EventLoop& loop, const config::ClusterSettings& cluster, NodeInfo self)
    : client_(loop, etcd_settings_of(cluster)) {
  if (cluster.role == config::ClusterRole::front)
    view_ = std::make_unique<RegistryView>(client_, cluster.prefix);
  else
    writer_ = std::make_unique<RegistryWriter>(client_, cluster.prefix, cluster.node, std::move(self),
                                               static_cast<int64_t>(cluster.lease_ttl_s));
}

void FleetLink::domain_presence(const std::string& domain, HubDirectory::Presence presence) {
  if (!writer_) return;
  bool first = known_.insert(domain).second;
  switch (presence) {
    case HubDirectory::Presence::running:
      if (running_.insert(domain).second) writer_->claim(domain);
      return;
    case HubDirectory::Presence::not_running:
      running_.erase(domain);
      if (first) writer_->offer(domain);
      return;
    case HubDirectory::Presence::removed:
      known_.erase(domain);
      running_.erase(domain);
      writer_->release(domain);
      return;
  }
}

void FleetLink::leave(std::function<void()> done) {
  if (!writer_) return done();
  writer_->leave(std::move(done));
}

}  // namespace xcg::gateway
