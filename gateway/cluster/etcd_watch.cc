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
      backoff_(kFirstBackoff) {
  if (next_revision_ > 0) open();
  else read_whole();
  probe();
}

EtcdWatch::~EtcdWatch() = default;

void EtcdWatch::probe() {
  probe_ = client_.loop().timer(kProbeInterval, "etcd watch probe", [this] {
    client_.range(prefix_, false, [this, alive = std::weak_ptr<int>(alive_)](const Result<RangeResult>& r) {
      if (!alive.expired()) probed(r.has_value());
    });
  });
}

// Whatever the answer, the client has moved on from a member that could not give it.
void EtcdWatch::probed(bool answered) {
  probe_answered_ = answered;
  if (stream_ && client_.current_endpoint() != endpoint_) {
    log::warn("etcd watch on {}: its member stopped answering; resuming from revision {}", prefix_,
              next_revision_);
    open();
  }
  probe();
}

void EtcdWatch::read_whole() {
  watching_ = false;
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
      next_revision_ = 0;
      return again_later();
    }
    if (page.revision == 0) whole_.revision = page.revision = r->revision;
    std::move(r->kvs.begin(), r->kvs.end(), std::back_inserter(whole_.kvs));
    if (r->more && !whole_.kvs.empty()) {
      page.from = whole_.kvs.back().key + '\0';
      return read_page(std::move(page));
    }
    next_revision_ = whole_.revision + 1;
    callbacks_.on_snapshot(whole_);
    whole_ = RangeResult{};
    open();
  });
}

void EtcdWatch::open() {
  partial_.clear();
  stream_ = client_.stream(
      "/v3/watch", etcd_json::watch_body(prefix_, next_revision_), [this](std::string_view b) { on_data(b); },
      [this](Result<HttpResponse> r) { on_closed(std::move(r)); }, endpoint_);
}

void EtcdWatch::on_data(std::string_view bytes) {
  partial_.append(bytes);
  size_t start = 0;
  for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
    if (!on_message(std::string_view(partial_).substr(start, nl - start)))
      return;  // the stream, or we, are gone
  }
  partial_.erase(0, start);
}

// False when the stream was dropped.
bool EtcdWatch::on_message(std::string_view line) {
  auto m = etcd_json::parse_watch_message(line);
  if (!m) {
    log::warn("etcd watch on {}: {}", prefix_, m.error().message);
    stream_.reset();
    again_later();
    return false;
  }
  if (m->canceled) {
    on_canceled(*m);
    return false;
  }
  if (m->created) {
    watching_ = true;
    backoff_ = kFirstBackoff;
  }
  if (m->events.empty()) return true;
  next_revision_ = std::max(next_revision_, m->events.back().kv.mod_revision + 1);
  std::weak_ptr<int> alive = alive_;
  callbacks_.on_events(m->events);  // may destroy us
  return !alive.expired();
}

void EtcdWatch::on_canceled(const WatchMessage& m) {
  stream_.reset();
  if (m.compact_revision > 0) {
    log::info("etcd watch on {}: revision {} compacted; reading it whole", prefix_, next_revision_);
    return read_whole();
  }
  log::warn("etcd watch on {}: cancelled: {}", prefix_, m.cancel_reason);
  again_later();
}

void EtcdWatch::on_closed(Result<HttpResponse> outcome) {
  std::string why =
      outcome ? "closed with status " + std::to_string(outcome->status) : outcome.error().message;
  log::warn("etcd watch on {}: stream ended ({}); resuming from revision {}", prefix_, why, next_revision_);
  stream_.reset();
  client_.endpoint_failed(endpoint_, why);
  again_later();
}

void EtcdWatch::again_later() {
  watching_ = false;
  retry_ = client_.loop().timer(backoff_, "etcd watch retry", [this] {
    if (next_revision_ > 0) open();
    else read_whole();
  });
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
}

}  // namespace xcg
