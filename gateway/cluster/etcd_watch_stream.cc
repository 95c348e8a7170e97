#include "gateway/cluster/etcd_watch_stream.h"

#include <utility>

#include "gateway/cluster/etcd_client.h"

namespace xcg {

WatchStream::WatchStream(EtcdClient& client, size_t endpoint, const std::string& prefix,
                         int64_t from_revision, WatchStreamCallbacks callbacks)
    : endpoint_(endpoint), callbacks_(std::move(callbacks)) {
  call_ = client.stream(
      "/v3/watch", etcd_json::watch_body(prefix, from_revision), [this](std::string_view b) { on_data(b); },
      [this](const Result<HttpResponse>& r) { on_closed(r); }, endpoint_);
}

WatchStream::~WatchStream() = default;

void WatchStream::on_data(std::string_view bytes) {
  partial_.append(bytes);
  size_t start = 0;
  for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
    if (!on_line(std::string_view(partial_).substr(start, nl - start)))
      return;  // the stream failed, or we are gone
  }
  partial_.erase(0, start);
}

// False when nothing more may be read: the message did not parse, or we were destroyed.
bool WatchStream::on_line(std::string_view line) {
  auto m = etcd_json::parse_watch_message(line);
  if (!m) {
    call_.reset();
    callbacks_.on_failed(m.error().message);  // may destroy us
    return false;
  }
  if (m->created) confirmed_ = true;
  std::weak_ptr<int> alive = alive_;
  callbacks_.on_message(*m);  // may destroy us
  return !alive.expired() && call_ != nullptr;
}

void WatchStream::on_closed(const Result<HttpResponse>& outcome) {
  confirmed_ = false;
  callbacks_.on_failed(outcome ? "closed with status " + std::to_string(outcome->status)
                               : outcome.error().message);  // may destroy us
}

}  // namespace xcg
