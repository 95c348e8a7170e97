// Where a front finds the node that runs a domain (docs/fleet.md, "Front to node"). The fleet's
// registry in etcd is the real one; the broker only asks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace xcg::gateway {

struct NodeRoute {
  std::string node;  // its name, as in nodes/<node>
  std::string host;  // a numeric IPv4 or IPv6 address: the loop never resolves names
  uint16_t port = 0;
  std::string host_key_fingerprint;  // "SHA256:...": the session pins the node's host key to it
  // Of the registry's record: a domain that left a node and came back to it has a newer one.
  int64_t revision = 0;
  bool operator==(const NodeRoute&) const = default;
};

class NodeDirectory {
 public:
  virtual ~NodeDirectory() = default;
  // The node running `domain` now, if any. Answers from memory: it must not block.
  virtual std::optional<NodeRoute> route(std::string_view domain) const = 0;
};

}  // namespace xcg::gateway
