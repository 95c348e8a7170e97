// The key map kept up to date from etcd: the keys/ prefix read whole, then watched; each
// change hands over the whole map again. While etcd cannot be reached the watch retries and
// nothing is handed over, so its owner keeps the last map (docs/fleet.md).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "gateway/cluster/etcd_client.h"
#include "gateway/cluster/etcd_watch.h"
#include "gateway/cluster/key_map.h"

namespace xcg {

class KeyMapFeed {
 public:
  using OnChange = std::function<void(const KeyMap&)>;
  KeyMapFeed(EtcdClient& client, std::string prefix, OnChange on_change);
  KeyMapFeed(const KeyMapFeed&) = delete;
  KeyMapFeed& operator=(const KeyMapFeed&) = delete;

  bool loaded() const { return loaded_; }  // a first snapshot has been handed over

 private:
  void on_snapshot(const RangeResult& r);
  void on_events(const std::vector<WatchEvent>& events);
  // Hands the map over; logs the bad values among `changed` (all of them after a snapshot).
  void publish(const std::set<std::string>* changed);

  std::string prefix_;
  OnChange on_change_;
  std::map<std::string, KeyValue> kvs_;  // by etcd key
  bool loaded_ = false;
  std::unique_ptr<EtcdWatch> watch_;
};

}  // namespace xcg
