// The broker's link to the fleet's etcd (docs/fleet.md), made only with a `cluster:` section:
// the process's one etcd client; on a node, the registry's writer, which follows the node's
// domains; on a front, the registry's view, which routes a customer's domain to its node.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "base/event_loop.h"
#include "config/config.h"
#include "gateway/broker/hub_directory.h"
#include "gateway/cluster/etcd_client.h"
#include "gateway/cluster/registry.h"
#include "gateway/cluster/registry_view.h"

namespace xcg::gateway {

class FleetLink {
 public:
  // `self` is what a node publishes in nodes/<node>; unused on a front. Throws on bad settings.
  FleetLink(EventLoop& loop, const config::ClusterSettings& cluster, NodeInfo self);
  FleetLink(const FleetLink&) = delete;
  FleetLink& operator=(const FleetLink&) = delete;

  EtcdClient& etcd() { return client_; }
  const EtcdClient& etcd() const { return client_; }
  const RegistryView* registry() const { return view_.get(); }     // a front's; null on a node
  const RegistryWriter* writer() const { return writer_.get(); }   // a node's; null on a front
  const std::set<std::string>& domains() const { return known_; }  // a node's, as last told
  bool runs_here(const std::string& domain) const { return running_.contains(domain); }
  // A node's domain: claimed when it runs here, offered when it does not, released when a
  // reload removes it. A record stays while its domain is shut off: its menu is here.
  void domain_presence(const std::string& domain, HubDirectory::Presence presence);
  // A node's domain migrated away: RegistryWriter::let_go.
  void let_go(const std::string& domain) {
    running_.erase(domain);
    if (writer_) writer_->let_go(domain);
  }
  // On a node, RegistryWriter::leave; on a front, `done` at once.
  void leave(std::function<void()> done);

 private:
  EtcdClient client_;
  std::unique_ptr<RegistryWriter> writer_;
  std::unique_ptr<RegistryView> view_;
  std::set<std::string> known_;    // domains told about at least once
  std::set<std::string> running_;  // of those, the ones running here
};

}  // namespace xcg::gateway
