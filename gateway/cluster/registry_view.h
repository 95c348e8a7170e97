// The registry as a front reads it: which node runs a domain, and how to reach that node.
// Kept in memory from two watches (nodes/ and domains/ under the prefix), so a lookup never
// waits on etcd.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "gateway/cluster/etcd_client.h"
#include "gateway/cluster/etcd_watch.h"
#include "gateway/cluster/registry_keys.h"

namespace xcg {

// The node recorded for a domain, as nodes/<node> registers it.
struct RegisteredNode {
  std::string node;
  std::string address;               // host:port of its SSH listener
  std::string host_key_fingerprint;  // pin the node's host key to this
  // Of domains/<domain>: a node that claims a domain again after it left writes a new one.
  int64_t revision = 0;
};

// What domains/<domain> says.
struct DomainRecord {
  std::string node;
  int64_t revision = 0;  // its mod_revision
};

class RegistryView {
 public:
  RegistryView(EtcdClient& client, const std::string& prefix);
  RegistryView(const RegistryView&) = delete;  // its watches hold references into it
  RegistryView& operator=(const RegistryView&) = delete;

  // The node recorded for `domain`, if that node is registered (alive) too.
  std::optional<RegisteredNode> lookup(const std::string& domain) const;
  // Both prefixes have been read once: a lookup's "no" means no.
  bool ready() const { return nodes_ready_ && domains_ready_; }
  const std::map<std::string, NodeInfo>& nodes() const { return nodes_; }          // by node name
  const std::map<std::string, DomainRecord>& domains() const { return domains_; }  // by domain

 private:
  std::string nodes_prefix_;
  std::string domains_prefix_;
  std::map<std::string, NodeInfo> nodes_;
  std::map<std::string, DomainRecord> domains_;
  bool nodes_ready_ = false;
  bool domains_ready_ = false;
  std::unique_ptr<EtcdWatch> nodes_watch_;
  std::unique_ptr<EtcdWatch> domains_watch_;
};

}  // namespace xcg
