// What `xcg check` says about a valid config: what it holds, and what looks like a mistake.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "config/config.h"

namespace xcg::config {

// RSA keys shorter than this are valid but warned about (NIST SP 800-57: 2048 bits is good
// only until 2030).
inline constexpr unsigned kStrongRsaBits = 3072;

struct Summary {
  size_t domains = 0;
  size_t keys = 0;
  size_t readonly_keys = 0;
  size_t files = 0;               // the main file and every included one
  std::vector<Problem> warnings;  // in file order; `where.file` is empty when unknown
  std::string cluster;            // cluster_line(), or "" without `cluster:`

  // "3 domains, 7 keys (2 read-only), 4 files"; the read-only part only when there are some.
  std::string counts() const;
  // The counts line, the cluster line if any, then one line per warning, each ending in '\n'.
  std::string str() const;
};

// "FILE:LINE:COLUMN: warning: MESSAGE", or "warning: MESSAGE" without a position.
std::string warning_line(const Problem& warning);

// "cluster: node 'dom0-a' (advertised as HOST:PORT), prefix /xcg/, etcd at URL, URL; 2 fronts":
// how this process takes part in the fleet.
std::string cluster_line(const Config& config);

Summary summary_of(const Config& config);
// summary_of(config).str()
std::string summarize(const Config& config);

}  // namespace xcg::config
