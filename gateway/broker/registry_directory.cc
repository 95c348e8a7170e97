#include "gateway/broker/registry_directory.h"

#include <charconv>

#include "base/log.h"

namespace xcg::gateway {

std::optional<std::pair<std::string, uint16_t>> split_host_port(std::string_view address) {
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view host = address.substr(0, colon), port_text = address.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return std::nullopt;
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535)
    return std::nullopt;
  return std::pair{std::string(host), static_cast<uint16_t>(port)};
}

std::optional<NodeRoute> RegistryDirectory::route(std::string_view domain) const {
  auto found = view_.lookup(std::string(domain));
  if (!found) return std::nullopt;
  auto address = split_host_port(found->address);
  if (!address) {
    log::warn("registry: node {} has the address '{}', not HOST:PORT", found->node, found->address);
    return std::nullopt;
  }
  return NodeRoute{found->node, address->first, address->second, found->host_key_fingerprint,
                   found->revision};
}

}  // namespace xcg::gateway
