// The key map kept up to date from etcd: the keys/ prefix read whole, then watched; each
// change hands over the whole map again. While etcd cannot be reached the watch retries and
// nothing is handed over, so its owner keeps the last map (docs/fleet.md); that is logged once.
#pragma once

#include <algorithm>
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
  // The store's revision the last map handed over is from; 0 before the first.
  int64_t revision() const { return revision_; }

 private:
  void on_snapshot(const RangeResult& r);
  void on_events(const std::vector<WatchEvent>& events);
  // Hands the map over; logs the bad values among `changed` (all of them after a snapshot).
  void publish(const std::set<std::string>* changed);
  // Says once when the watch has been down a while, and once when it is back.
  void check_reach();

  EventLoop& loop_;
  std::string prefix_;
  OnChange on_change_;
  KeyMapEntries entries_;  // each read once, when it arrives
  bool loaded_ = false;
  int64_t revision_ = 0;
  size_t key_count_ = 0;      // in the last map handed over
  unsigned down_checks_ = 0;  // checks in a row that found the watch down
  std::unique_ptr<EtcdWatch> watch_;
  EventLoop::Timer check_;
};

}  // namespace xcg
