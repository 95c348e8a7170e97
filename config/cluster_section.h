// The `cluster:` section (etcd endpoints, TLS pair, prefix, this process's role and name) and
// the top-level `fronts:` a node trusts; docs/fleet.md.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/loader.h"
#include "config/table.h"

namespace xcg::config {

const Table<ClusterSettings>& cluster_table();

// Reads the section into config.cluster; false if it reported a problem.
bool read_cluster(Loader& in, const Field& f, Config& c);
// Reads `fronts:` (OpenSSH public key lines) into config.fronts.
bool read_fronts(Loader& in, const Field& f, Config& c);

// The rules between `cluster:` and the rest of the main file: a node needs `hypervisor` and
// `domains` (or `include`), a front has neither domains nor fronts of its own.
void check_role(Loader& in, const Outcome& read, const YAML::Node& root, Config& c);

// An etcd endpoint: "https://HOST:PORT", or "http://HOST:PORT" on loopback only.
Result<std::string> parse_endpoint(std::string_view text);
// "HOST:PORT" or "[IPV6]:PORT", HOST a DNS name or an address; port 1..65535.
Result<std::string> parse_advertise(std::string_view text);

// The files `cluster:` names that the loader does not open, each a problem ("ca_file: ...").
std::vector<std::string> cluster_file_problems(const ClusterSettings& cluster);

}  // namespace xcg::config
