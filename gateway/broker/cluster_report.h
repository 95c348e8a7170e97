// `xcg ctl cluster`: what a fleet's broker knows of its cluster, as plain aligned text: its
// etcd endpoints and how each answers, the key map in use, on a node its lease and the domain
// records it holds, on a front the registry it routes by.
#pragma once

#include <string>

#include "config/config.h"
#include "gateway/broker/fleet_link.h"
#include "gateway/cluster/key_map.h"
#include "gateway/cluster/key_map_feed.h"

namespace xcg::gateway {

// `feed` is null before the key map is asked for; `keys` is the last map it handed over.
std::string cluster_report(const config::ClusterSettings& cluster, const FleetLink& fleet,
                           const KeyMapFeed* feed, const DomainKeys& keys);

}  // namespace xcg::gateway
