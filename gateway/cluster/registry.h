// The node's side of the registry (docs/fleet.md, "Registry"): nodes/<node> under the node's
// lease, put again whenever the lease changes; domains/<domain> = node name for each domain
// running here, written only by a transaction that compares the key's mod_revision with the
// one this node last saw, so a node that lost a domain cannot overwrite its new owner. A
// domain's record stays while it is shut off here: the node that last ran it serves its menu.
// The node watches its own nodes/<node>: when it goes while the node is registered (its lease
// dropped before a keepalive could tell), the node registers again at once under a new lease.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "gateway/cluster/etcd_client.h"
#include "gateway/cluster/etcd_lease.h"
#include "gateway/cluster/etcd_watch.h"
#include "gateway/cluster/registry_keys.h"

namespace xcg {

class RegistryWriter {
 public:
  RegistryWriter(EtcdClient& client, std::string prefix, std::string node, NodeInfo info,
                 int64_t lease_ttl_s);
  RegistryWriter(const RegistryWriter&) = delete;
  RegistryWriter& operator=(const RegistryWriter&) = delete;
  ~RegistryWriter();

  // The domain runs here now (started, or migrated in): take the record over from whatever
  // it says, at the revision read just before; read again and retry (twice at most) if the
  // record changed between that read and the write.
  void claim(const std::string& domain);
  // The domain is this node's but does not run: record it only if no node is recorded for
  // it, so that its customers can still reach a menu to start it.
  void offer(const std::string& domain);
  // The domain is no longer this node's: remove the record, unless another node has written
  // it since.
  void release(const std::string& domain);
  // The domain migrated away or left this host: this node stops writing its record, and leaves
  // it for the destination to claim. If it comes back here, its claim writes the record again
  // (against the revision read), so that fronts see a new revision of the same node.
  void let_go(const std::string& domain);
  // Writes each held record again against the revision of this node's last write: one that
  // another node has taken meanwhile is refused, and let go.
  void recheck();
  // The node stops: its lease is revoked, so nodes/<node> goes at once (fronts stop routing to
  // it) rather than when the TTL runs out. `done` once etcd has answered. Its domain records
  // stay, as for a node that died.
  void leave(std::function<void()> done);

  bool registered() const { return registered_; }  // nodes/<node> is up under the current lease
  bool holds(const std::string& domain) const { return held_.contains(domain); }
  int64_t lease() const { return lease_ ? lease_->id() : 0; }
  int64_t lease_ttl() const { return lease_ttl_s_; }
  // The domain records this node wrote and still holds: domain -> mod_revision of its write.
  const std::map<std::string, int64_t>& held() const { return held_; }

 private:
  void on_lease(int64_t lease);
  void put_node(int64_t lease);
  void watch_node();
  void node_deleted(int64_t revision);
  void read_and_claim(const std::string& domain, int retries);
  void write_claim(const std::string& domain, int64_t mod_revision, int retries);
  void claimed(const std::string& domain, Result<TxnResult> r, int retries);
  void hold(const std::string& domain, int64_t mod_revision);
  std::string domain_key(const std::string& domain) const;
  template <class F>
  auto guarded(F f);

  EtcdClient& client_;
  std::string prefix_;
  std::string node_;
  NodeInfo info_;
  int64_t lease_ttl_s_;
  std::map<std::string, int64_t> held_;  // domain -> mod_revision of this node's write
  std::set<std::string> wanted_;         // claimed or offered, not released since
  std::set<std::string> let_go_;         // let go, not claimed again since
  bool registered_ = false;
  int64_t node_revision_ = 0;                              // of this node's last put of nodes/<node>
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // for answers that outlive us
  std::unique_ptr<EtcdLease> lease_;
  std::unique_ptr<EtcdWatch> node_watch_;
};

}  // namespace xcg
