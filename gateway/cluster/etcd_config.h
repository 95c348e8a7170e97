// The etcd client's settings from a config's `cluster:` section.
#pragma once

#include "config/config.h"
#include "gateway/cluster/etcd_client.h"

namespace xcg {

inline EtcdSettings etcd_settings_of(const config::ClusterSettings& cluster) {
  EtcdSettings out;
  out.endpoints = cluster.endpoints;
  out.ca_file = cluster.ca_file;
  out.cert_file = cluster.cert_file;
  out.key_file = cluster.key_file;
  return out;
}

}  // namespace xcg
