// A front's NodeDirectory on the fleet's registry (RegistryView, kept in memory by its watches):
// the node's advertised HOST:PORT split for a numeric connect.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "gateway/broker/node_directory.h"
#include "gateway/cluster/registry_view.h"

namespace xcg::gateway {

// "192.0.2.1:22" or "[2001:db8::1]:22" as host and port; nullopt for anything else.
std::optional<std::pair<std::string, uint16_t>> split_host_port(std::string_view address);

class RegistryDirectory final : public NodeDirectory {
 public:
  explicit RegistryDirectory(const RegistryView& view) : view_(view) {}
  std::optional<NodeRoute> route(std::string_view domain) const override;

 private:
  const RegistryView& view_;
};

}  // namespace xcg::gateway
