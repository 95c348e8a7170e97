// A watch on a key prefix that survives its streams: after a disconnect it starts again, on
// another endpoint, from the revision after the last event it delivered; when etcd has
// compacted that revision away, it reads the prefix whole, hands it over as a snapshot, and
// watches from after the snapshot. So an owner that applies snapshots and events in order
// misses nothing.
//
// It keeps two streams on two members (one with a single endpoint) and delivers each revision
// from whichever brings it first, dropping what it already delivered: a member that stops
// answering without closing its stream (frozen, or cut off from the others) costs nothing
// while the other stream runs. Every few seconds the watch also reads one key through the
// client, whose failover moves off such a member, and moves that stream to another.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/event_loop.h"
#include "gateway/cluster/etcd_json.h"
#include "gateway/cluster/etcd_watch_stream.h"
#include "gateway/cluster/watch_lag.h"

namespace xcg {

class EtcdClient;

struct WatchCallbacks {
  // Every key under the prefix as of a revision: replaces whatever the owner knew.
  std::function<void(const RangeResult&)> on_snapshot;
  // Changes, in revision order.
  std::function<void(const std::vector<WatchEvent>&)> on_events;
};

class EtcdWatch {
 public:
  // From `from_revision` on; 0: from a snapshot of the prefix.
  EtcdWatch(EtcdClient& client, std::string prefix, int64_t from_revision, WatchCallbacks callbacks);
  EtcdWatch(const EtcdWatch&) = delete;
  EtcdWatch& operator=(const EtcdWatch&) = delete;
  ~EtcdWatch();

  // Whether etcd has confirmed a current stream: events from now on reach us.
  bool watching() const;
  // Watching, and the last probe was answered: a member that lost its quorum keeps a stream
  // open and confirmed, but can answer no read, and no change can reach it.
  bool reachable() const { return watching() && probe_answered_; }
  // The revision the next stream will start from.
  int64_t next_revision() const { return next_revision_; }
  // How long it has been behind the store (watch_lag.h); 0 when it has caught up.
  double lag_seconds() const { return lag_.seconds(WatchLag::Clock::now()); }
  // The store's revision at the last probe answered; 0 before the first.
  int64_t probed_revision() const { return probed_revision_; }

 private:
  // One of the two streams, and when to open it again after it failed.
  struct Slot {
    std::unique_ptr<WatchStream> stream;
    std::chrono::milliseconds backoff;
    EventLoop::Timer retry;
  };

  void read_whole();
  void open_all();
  void open(size_t slot);
  size_t endpoint_for(size_t slot) const;
  void on_message(size_t slot, const WatchMessage& m);
  void deliver(const std::vector<WatchEvent>& events);
  void on_canceled(size_t slot, const WatchMessage& m);
  void on_failed(size_t slot, const std::string& why);
  void again_later(size_t slot);
  void read_page(RangePage page);
  void probe();
  void probed(const Result<RangeResult>& r);
  bool member_failed(const WatchStream& stream);

  EtcdClient& client_;
  std::string prefix_;
  int64_t next_revision_;
  WatchCallbacks callbacks_;
  std::array<Slot, 2> slots_;
  size_t streams_;  // how many slots are used: one per endpoint, two at most
  bool reading_ = false;
  RangeResult whole_;           // the pages read so far of a prefix read whole
  bool probe_answered_ = true;  // until a probe says otherwise
  EventLoop::Timer probe_;
  WatchLag lag_;
  int64_t probed_revision_ = 0;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // for answers that outlive us
};

}  // namespace xcg
