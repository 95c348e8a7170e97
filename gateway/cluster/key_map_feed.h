// The key map kept up to date from etcd: the keys/ prefix read whole, then watched. A read
// whole (the first, or again after a compaction) hands over the whole map; a change hands over
// only the domains it touches, with their keys now. While etcd cannot be reached the watch
// retries and nothing is handed over, so its owner keeps the last map (docs/fleet.md); that is
// logged once.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "gateway/cluster/etcd_client.h"
#include "gateway/cluster/etcd_watch.h"
#include "gateway/cluster/key_map_state.h"

namespace xcg {

struct KeyMapCallbacks {
  std::function<void(const KeyMap&)> on_whole;         // replaces whatever the owner had
  std::function<void(const KeyMapChange&)> on_change;  // after the first on_whole only
};

class KeyMapFeed {
 public:
  KeyMapFeed(EtcdClient& client, std::string prefix, KeyMapCallbacks callbacks);
  KeyMapFeed(const KeyMapFeed&) = delete;
  KeyMapFeed& operator=(const KeyMapFeed&) = delete;

  bool loaded() const { return loaded_; }  // a first snapshot has been handed over
  // The store's revision the last map handed over is from; 0 before the first.
  int64_t revision() const { return revision_; }
  size_t key_count() const { return state_.key_count(); }
  double watch_lag_seconds() const { return watch_->lag_seconds(); }
  int64_t probed_revision() const { return watch_->probed_revision(); }

 private:
  void on_snapshot(const RangeResult& r);
  void on_events(const std::vector<WatchEvent>& events);
  // Says once when the watch has been down a while, and once when it is back.
  void check_reach();

  EventLoop& loop_;
  KeyMapCallbacks callbacks_;
  KeyMapState state_;
  bool loaded_ = false;
  int64_t revision_ = 0;
  unsigned down_checks_ = 0;  // checks in a row that found the watch down
  std::unique_ptr<EtcdWatch> watch_;
  EventLoop::Timer check_;
};

}  // namespace xcg
