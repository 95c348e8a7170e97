#include "gateway/broker/cluster_report.h"

#include <algorithm>
#include <map>
#include <vector>

#include <fmt/format.h>

#include "base/text.h"

namespace xcg::gateway {
namespace {

using Rows = std::vector<std::vector<std::string>>;

// Indented rows, each column padded to its widest cell. Cells may come from etcd: made printable.
std::string table(const Rows& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) {
      if (widths.size() <= i) widths.push_back(0);
      widths[i] = std::max(widths[i], printable(row[i], 200).size());
    }
  std::string out;
  for (const auto& row : rows) {
    std::string line = " ";
    for (size_t i = 0; i < row.size(); ++i) {
      std::string cell = printable(row[i], 200);
      line += (i == 0 ? " " : "  ") + (i + 1 < row.size() ? fmt::format("{:<{}}", cell, widths[i]) : cell);
    }
    out += line + "\n";
  }
  return out;
}

std::string endpoint_state(const EndpointHealth& h) {
  if (h.failing_since)
    return fmt::format("failing since {}: {}", utc_timestamp(*h.failing_since), h.last_error);
  if (!h.answered) return "not asked yet";
  return h.last_error.empty() ? "answering" : "answering; last error: " + h.last_error;
}

std::string etcd_lines(const EtcdClient& client) {
  Rows rows;
  const auto& health = client.endpoint_health();
  for (size_t i = 0; i < health.size(); ++i)
    rows.push_back(
        {health[i].url, i == client.current_endpoint() ? "in use" : "", endpoint_state(health[i])});
  return "etcd endpoints:\n" + table(rows);
}

std::string key_map_line(const KeyMapFeed* feed, const DomainKeys& keys) {
  if (feed == nullptr || !feed->loaded()) return "key map: not read yet; no customer can log in\n";
  size_t count = 0;
  for (const auto& [domain, domain_keys] : keys) count += domain_keys.size();
  return fmt::format("key map: {} domains, {} keys, revision {}\n", keys.size(), count, feed->revision()) +
         fmt::format("key map watch: {:.3f} s behind; the store at revision {} at the last probe\n",
                     feed->watch_lag_seconds(), feed->probed_revision());
}

std::string lease_line(const config::ClusterSettings& cluster, const RegistryWriter& writer) {
  if (writer.lease() == 0) return fmt::format("lease: none granted yet (ttl {} s)\n", writer.lease_ttl());
  return fmt::format("lease: {:x}, ttl {} s; nodes/{} {}\n", writer.lease(), writer.lease_ttl(), cluster.node,
                     writer.registered() ? "registered" : "not written yet");
}

// The domains a node has claimed (they run here) or offered (they do not), and its records.
std::string held_lines(const FleetLink& fleet) {
  if (fleet.domains().empty()) return "domains of this node: none\n";
  Rows rows;
  for (const auto& domain : fleet.domains()) {
    auto held = fleet.writer()->held().find(domain);
    rows.push_back({domain, fleet.runs_here(domain) ? "claimed (running here)" : "offered (not running)",
                    held == fleet.writer()->held().end()
                        ? "not recorded for this node"
                        : fmt::format("recorded for this node at revision {}", held->second)});
  }
  return "domains of this node:\n" + table(rows);
}

// The nodes a front routes to, each with its domains; domains whose node is not registered.
std::string registry_lines(const RegistryView& view) {
  if (!view.ready()) return "registry: not read yet; no domain is routed\n";
  std::map<std::string, std::vector<std::string>> routed;
  std::vector<std::string> nowhere;
  for (const auto& [domain, record] : view.domains()) {
    const std::string& node = record.node;
    if (view.nodes().contains(node)) routed[node].push_back(domain);
    else nowhere.push_back(fmt::format("{} (on {})", domain, node));
  }
  Rows rows{{"NODE", "ADDRESS", "DOMAINS"}};
  for (const auto& [node, info] : view.nodes())
    rows.push_back({node, info.address, routed[node].empty() ? "-" : join(routed[node], " ")});
  std::string out =
      fmt::format("registry: {} nodes, {} domains\n", view.nodes().size(), view.domains().size());
  out += table(rows);
  if (!nowhere.empty())
    out += printable("routed nowhere, their node is not registered: " + join(nowhere, ", ")) + "\n";
  return out;
}

}  // namespace

std::string cluster_report(const config::ClusterSettings& cluster, const FleetLink& fleet,
                           const KeyMapFeed* feed, const DomainKeys& keys) {
  bool front = cluster.role == config::ClusterRole::front;
  std::string out =
      fmt::format("cluster: {} '{}', prefix {}\n", front ? "front" : "node", cluster.node, cluster.prefix);
  out += etcd_lines(fleet.etcd());
  if (fleet.writer() != nullptr) out += lease_line(cluster, *fleet.writer()) + held_lines(fleet);
  out += key_map_line(feed, keys);
  if (fleet.registry() != nullptr) out += registry_lines(*fleet.registry());
  return out;
}

}  // namespace xcg::gateway
