#include "gateway/cluster/etcd_watch.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "base/log.h"
#include "gateway/cluster/etcd_client.h"

namespace xcg {
namespace {

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{2000};
constexpr std::chrono::milliseconds kProbeInterval{3000};

}  // namespace

EtcdWatch::EtcdWatch(EtcdClient& client, std::string prefix, int64_t from_revision, WatchCallbacks callbacks)
    : client_(client),
      prefix_(std::move(prefix)),
      next_revision_(from_revision),
      callbacks_(std::move(callbacks)),
      streams_(std::min<size_t>(2, client.endpoint_health().size())) {
  for (Slot& slot : slots_) slot.backoff = kFirstBackoff;
  if (next_revision_ > 0) open_all();
  else read_whole();
  probe();
}

EtcdWatch::~EtcdWatch() = default;

bool EtcdWatch::watching() const {
  return std::any_of(slots_.begin(), slots_.end(),
                     [](const Slot& slot) { return slot.stream && slot.stream->confirmed(); });
}

void EtcdWatch::probe() {
  probe_ = client_.loop().timer(kProbeInterval, "etcd watch probe", [this] {
    client_.range(prefix_, false, [this, alive = std::weak_ptr<int>(alive_)](const Result<RangeResult>& r) {
      if (!alive.expired()) probed(r);
    });
  });
}

// Whatever the answer, the client has moved on from a member that could not give it.
void EtcdWatch::probed(const Result<RangeResult>& r) {
  probe_answered_ = r.has_value();
  if (r) {
    probed_revision_ = r->revision;
    lag_.probed(r->revision, next_revision_ - 1, WatchLag::Clock::now());
  }
  for (size_t i = 0; i < streams_; ++i) {
    if (!slots_[i].stream || !member_failed(*slots_[i].stream)) continue;
    log::warn("etcd watch on {}: its member stopped answering; resuming from revision {}", prefix_,
              next_revision_);
    open(i);
  }
  probe();
}

// The stream's member failed a request since the stream was opened, or has not confirmed the
// stream in a probe's interval (it is then counted as failing, so that the next stream avoids it).
bool EtcdWatch::member_failed(const WatchStream& stream) {
  if (!stream.confirmed() && std::chrono::system_clock::now() - stream.opened() >= kProbeInterval) {
    client_.endpoint_failed(stream.endpoint(), "a watch was not confirmed within 3 s");
    return true;
  }
  const EndpointHealth& health = client_.endpoint_health()[stream.endpoint()];
  return health.failing_since && *health.failing_since >= stream.opened();
}

void EtcdWatch::read_whole() {
  reading_ = true;
  for (Slot& slot : slots_) {
    slot.stream.reset();
    slot.retry.reset();
  }
  whole_ = RangeResult{};
  read_page(RangePage{.prefix = prefix_, .from = prefix_, .revision = 0, .limit = client_.range_page_size()});
}

// Every page after the first is read as of the first one's revision: together they are the
// prefix at one moment, and the watch goes on from there.
void EtcdWatch::read_page(RangePage page) {
  client_.range_page(page, [this, page, alive = std::weak_ptr<int>(alive_)](Result<RangeResult> r) mutable {
    if (alive.expired()) return;
    if (!r) {
      log::warn("etcd watch on {}: reading it whole failed: {}", prefix_, r.error().message);
      reading_ = false;
      next_revision_ = 0;
      return again_later(0);
    }
    if (page.revision == 0) whole_.revision = page.revision = r->revision;
    std::move(r->kvs.begin(), r->kvs.end(), std::back_inserter(whole_.kvs));
    if (r->more && !whole_.kvs.empty()) {
      page.from = whole_.kvs.back().key + '\0';
      return read_page(std::move(page));
    }
    reading_ = false;
    next_revision_ = whole_.revision + 1;
    lag_.applied(whole_.revision);
    callbacks_.on_snapshot(std::exchange(whole_, RangeResult{}));
    open_all();
  });
}

void EtcdWatch::open_all() {
  for (size_t i = 0; i < streams_; ++i) open(i);
}

void EtcdWatch::open(size_t slot) {
  slots_[slot].retry.reset();
  slots_[slot].stream.reset();
  slots_[slot].stream = std::make_unique<WatchStream>(
      client_, endpoint_for(slot), prefix_, next_revision_,
      WatchStreamCallbacks{[this, slot](const WatchMessage& m) { on_message(slot, m); },
                           [this, slot](const std::string& why) { on_failed(slot, why); }});
}

// The client's endpoint in use, or another when the other stream is there.
size_t EtcdWatch::endpoint_for(size_t slot) const {
  const auto& other = slots_[1 - slot].stream;
  return client_.endpoint_besides(other ? other->endpoint() : client_.endpoint_health().size());
}

void EtcdWatch::on_message(size_t slot, const WatchMessage& m) {
  if (m.canceled) return on_canceled(slot, m);
  if (m.created) slots_[slot].backoff = kFirstBackoff;
  // A progress notification says the stream has sent every change up to the store's revision.
  // It moves the lag only, not where a stream starts again: some etcd versions send one
  // before the last events of its revision, which must not then be taken as delivered.
  if (m.events.empty() && !m.created) return lag_.applied(m.revision);
  deliver(m.events);
}

// The events of revisions not delivered yet; the other stream may have brought them first.
void EtcdWatch::deliver(const std::vector<WatchEvent>& events) {
  auto fresh = std::find_if(events.begin(), events.end(),
                            [this](const WatchEvent& e) { return e.kv.mod_revision >= next_revision_; });
  if (fresh == events.end()) return;
  next_revision_ = events.back().kv.mod_revision + 1;
  lag_.applied(next_revision_ - 1);
  if (fresh == events.begin()) return callbacks_.on_events(events);  // may destroy us
  callbacks_.on_events(std::vector<WatchEvent>(fresh, events.end()));
}

void EtcdWatch::on_canceled(size_t slot, const WatchMessage& m) {
  slots_[slot].stream.reset();
  if (m.compact_revision > 0) {
    if (reading_) return;
    log::info("etcd watch on {}: revision {} compacted; reading it whole", prefix_, next_revision_);
    return read_whole();
  }
  log::warn("etcd watch on {}: cancelled: {}", prefix_, m.cancel_reason);
  again_later(slot);
}

void EtcdWatch::on_failed(size_t slot, const std::string& why) {
  log::warn("etcd watch on {}: stream ended ({}); resuming from revision {}", prefix_, why, next_revision_);
  size_t endpoint = slots_[slot].stream->endpoint();
  slots_[slot].stream.reset();
  client_.endpoint_failed(endpoint, why);
  again_later(slot);
}

void EtcdWatch::again_later(size_t slot) {
  Slot& s = slots_[slot];
  s.retry = client_.loop().timer(s.backoff, "etcd watch retry", [this, slot] {
    if (next_revision_ > 0) open(slot);
    else read_whole();
  });
  s.backoff = std::min(s.backoff * 2, kMaxBackoff);
}

}  // namespace xcg
