// A watch on a key prefix that survives its stream: after a disconnect it starts again, on the
// next endpoint, from the revision after the last event it delivered; when etcd has compacted
// that revision away, it reads the prefix whole, hands it over as a snapshot, and watches from
// after the snapshot. So an owner that applies snapshots and events in order misses nothing.
//
// A member that stops answering without closing the stream (frozen, or cut off from the
// others) would keep it quiet for ever: every few seconds the watch reads one key through the
// client, whose failover moves off such a member, and follows it to the next.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/event_loop.h"
#include "gateway/cluster/curl_multi.h"
#include "gateway/cluster/etcd_json.h"

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

  // Whether etcd has confirmed the current stream: events from now on reach us.
  bool watching() const { return watching_; }
  // Watching, and the last probe was answered: a member that lost its quorum keeps a stream
  // open and confirmed, but can answer no read, and no change can reach it.
  bool reachable() const { return watching_ && probe_answered_; }
  // The revision the next stream will start from.
  int64_t next_revision() const { return next_revision_; }

 private:
  void read_whole();
  void read_page(RangePage page);
  void open();
  void on_data(std::string_view bytes);
  bool on_message(std::string_view line);
  void on_canceled(const WatchMessage& m);
  void on_closed(Result<HttpResponse> outcome);
  void again_later();
  void probe();
  void probed(bool answered);

  EtcdClient& client_;
  std::string prefix_;
  int64_t next_revision_;
  WatchCallbacks callbacks_;
  std::unique_ptr<HttpCall> stream_;
  size_t endpoint_ = 0;
  RangeResult whole_;    // the pages read so far of a prefix read whole
  std::string partial_;  // a message not yet ended by its newline
  bool watching_ = false;
  bool probe_answered_ = true;  // until a probe says otherwise
  std::chrono::milliseconds backoff_;
  EventLoop::Timer retry_;
  EventLoop::Timer probe_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // for answers that outlive us
};

}  // namespace xcg
