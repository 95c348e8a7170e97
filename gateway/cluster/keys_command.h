// `xcg keys import FILE...` and `xcg keys export`: the key map in etcd from and to YAML files
// with `domains:` (docs/fleet.md). A command line tool: it runs its own EventLoop until done.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "config/config.h"

namespace xcg {

// Writes the keys of the files' domains to etcd, only those not already there as they are;
// prints the counts. Exit status: 0, or 1 with the reason on stderr.
int import_keys(const config::ClusterSettings& cluster, const std::vector<std::string>& files);
// Prints the key map as a YAML `domains:` document, sorted; bad values are reported on stderr
// and left out.
int export_keys(const config::ClusterSettings& cluster);
// For `xcg check`: "etcd: 7 keys of 3 domains (5 for the domains here)", or
// "warning: etcd: cannot read the key map: WHY" when it cannot be reached within `deadline`.
std::string key_map_status(const config::Config& config, std::chrono::milliseconds deadline);

}  // namespace xcg
