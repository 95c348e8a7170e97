#include "gateway/cluster/etcd_client.h"

#include <stdexcept>
#include <utility>

#include "base/log.h"
#include "gateway/cluster/etcd_lease.h"
#include "gateway/cluster/etcd_watch.h"

namespace xcg {
namespace {

bool loopback_host(std::string_view host) {
  return host.starts_with("127.") || host == "[::1]" || host == "localhost";
}

Result<void> check_endpoint(const std::string& url) {
  bool tls = url.starts_with("https://");
  if (!tls && !url.starts_with("http://"))
    return fail(Errc::invalid_input, "etcd endpoint '" + url + "': not http(s)://");
  std::string_view rest = std::string_view(url).substr(tls ? 8 : 7);
  if (rest.find('/') != std::string_view::npos)
    return fail(Errc::invalid_input, "etcd endpoint '" + url + "': host and port only, no path");
  auto colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == rest.size() ||
      rest.substr(colon).find(']') != std::string_view::npos)
    return fail(Errc::invalid_input, "etcd endpoint '" + url + "': no port");
  if (!tls && !loopback_host(rest.substr(0, colon)))
    return fail(Errc::invalid_input, "etcd endpoint '" + url + "': plain http only to a loopback address");
  return {};
}

// An answer the next member may serve: no connection, no answer in time, or no leader here.
bool worth_another_endpoint(const Result<HttpResponse>& r) {
  if (!r) return r.error().code == Errc::unavailable || r.error().code == Errc::timeout;
  return r->status == 503;
}

std::string failure_text(const Result<HttpResponse>& r) {
  if (!r) return r.error().message;
  return "etcd: " + etcd_json::error_message(r->body);
}

template <class T>
EtcdReply<std::string> parsed(EtcdReply<T> done, Result<T> (*parse)(std::string_view)) {
  return [done = std::move(done), parse](Result<std::string> body) {
    if (!body) return done(tl::unexpected(body.error()));
    done(parse(*body));
  };
}

EtcdReply<std::string> done_without_body(EtcdReply<void> done) {
  return [done = std::move(done)](Result<std::string> body) {
    if (!body) return done(tl::unexpected(body.error()));
    done({});
  };
}

}  // namespace

struct EtcdClient::Pending {
  std::string path;
  std::string body;
  EtcdReply<std::string> done;
  std::chrono::milliseconds timeout;  // per endpoint tried
  size_t tries = 0;
  std::unique_ptr<HttpCall> call;
};

Result<void> check_endpoints(const std::vector<std::string>& endpoints) {
  if (endpoints.empty()) return fail(Errc::invalid_input, "no etcd endpoints");
  for (const auto& url : endpoints)
    if (auto ok = check_endpoint(url); !ok) return ok;
  return {};
}

EtcdClient::EtcdClient(EventLoop& loop, EtcdSettings settings)
    : loop_(loop), settings_(std::move(settings)), multi_(loop) {
  if (auto ok = check_endpoints(settings_.endpoints); !ok) throw std::invalid_argument(ok.error().message);
  for (const auto& url : settings_.endpoints) health_.push_back(EndpointHealth{url});
}

EtcdClient::~EtcdClient() = default;

HttpRequest EtcdClient::request(size_t index, const std::string& path, std::string body,
                                std::chrono::milliseconds timeout) const {
  return HttpRequest{settings_.endpoints[index] + path, std::move(body), timeout, settings_.connect_timeout,
                     TlsFiles{settings_.ca_file, settings_.cert_file, settings_.key_file}};
}

void EtcdClient::call(std::string path, std::string body, EtcdReply<std::string> done,
                      std::optional<std::chrono::milliseconds> timeout) {
  uint64_t id = next_id_++;
  pending_.emplace(id, std::make_unique<Pending>(Pending{std::move(path), std::move(body), std::move(done),
                                                         timeout.value_or(settings_.request_timeout)}));
  attempt(id);
}

void EtcdClient::attempt(uint64_t id) {
  Pending& p = *pending_.at(id);
  ++p.tries;
  size_t index = current_;
  p.call = multi_.start(request(index, p.path, p.body, p.timeout),
                        [this, id, index](Result<HttpResponse> r) { attempted(id, index, std::move(r)); });
}

void EtcdClient::attempted(uint64_t id, size_t index, Result<HttpResponse> response) {
  auto it = pending_.find(id);
  if (worth_another_endpoint(response)) {
    endpoint_failed(index, failure_text(response));
    if (it->second->tries < settings_.endpoints.size()) return attempt(id);
  } else {
    endpoint_answered(index);
  }
  std::unique_ptr<Pending> p = std::move(it->second);
  pending_.erase(it);
  reachable_ = response && response->status != 503;
  if (!response) return p->done(tl::unexpected(response.error()));
  if (response->status != 200)
    return p->done(fail(response->status == 503 ? Errc::unavailable : Errc::invalid_input,
                        "etcd: " + etcd_json::error_message(response->body)));
  p->done(std::move(response->body));
}

void EtcdClient::endpoint_answered(size_t index) {
  health_[index].answered = true;
  health_[index].failing_since.reset();
}

void EtcdClient::endpoint_failed(size_t index, const std::string& why) {
  EndpointHealth& h = health_[index];
  h.answered = false;
  h.last_error = why;
  if (!h.failing_since) h.failing_since = std::chrono::system_clock::now();
  if (index != current_) return;
  reachable_ = false;
  current_ = (current_ + 1) % settings_.endpoints.size();
  if (settings_.endpoints.size() > 1)
    log::warn("etcd: {} failed; trying {}", settings_.endpoints[index], settings_.endpoints[current_]);
}

std::unique_ptr<HttpCall> EtcdClient::stream(const std::string& path, std::string body,
                                             HttpCall::OnData on_data, HttpCall::OnDone on_done,
                                             size_t index) {
  return multi_.start(request(index, path, std::move(body), std::chrono::milliseconds(0)), std::move(on_done),
                      std::move(on_data));
}

size_t EtcdClient::endpoint_besides(size_t taken) const {
  if (current_ != taken) return current_;
  size_t n = settings_.endpoints.size();
  for (size_t k = 1; k < n; ++k)
    if (!health_[(taken + k) % n].failing_since) return (taken + k) % n;
  return (taken + 1) % n;
}

void EtcdClient::range(const std::string& key, bool prefix, EtcdReply<RangeResult> done) {
  call("/v3/kv/range", etcd_json::range_body(key, prefix), parsed(std::move(done), &etcd_json::parse_range));
}

void EtcdClient::put(const std::string& key, const std::string& value, int64_t lease,
                     EtcdReply<int64_t> done) {
  call("/v3/kv/put", etcd_json::put_body(key, value, lease),
       parsed(std::move(done), &etcd_json::parse_revision));
}

void EtcdClient::range_page(const RangePage& page, EtcdReply<RangeResult> done) {
  call("/v3/kv/range", etcd_json::range_page_body(page), parsed(std::move(done), &etcd_json::parse_range));
}

void EtcdClient::delete_range(const std::string& key, bool prefix, EtcdReply<int64_t> done) {
  call("/v3/kv/deleterange", etcd_json::delete_body(key, prefix),
       parsed(std::move(done), &etcd_json::parse_revision));
}

void EtcdClient::txn_put_if(const std::string& key, int64_t mod_revision, const std::string& value,
                            int64_t lease, EtcdReply<TxnResult> done) {
  call("/v3/kv/txn", etcd_json::txn_body(key, mod_revision, value, lease),
       parsed(std::move(done), &etcd_json::parse_txn));
}

void EtcdClient::txn_delete_if(const std::string& key, int64_t mod_revision, EtcdReply<TxnResult> done) {
  call("/v3/kv/txn", etcd_json::txn_body(key, mod_revision, std::nullopt, 0),
       parsed(std::move(done), &etcd_json::parse_txn));
}

void EtcdClient::compact(int64_t revision, EtcdReply<void> done) {
  call("/v3/kv/compaction", etcd_json::compact_body(revision), done_without_body(std::move(done)));
}

void EtcdClient::lease_revoke(int64_t id, EtcdReply<void> done) {
  call("/v3/lease/revoke", etcd_json::lease_id_body(id), done_without_body(std::move(done)));
}

void EtcdClient::lease_grant(int64_t ttl_s, EtcdReply<LeaseGrant> done) {
  call("/v3/lease/grant", etcd_json::lease_grant_body(ttl_s),
       parsed(std::move(done), &etcd_json::parse_lease_grant));
}

void EtcdClient::lease_keepalive(int64_t id, std::chrono::milliseconds timeout, EtcdReply<int64_t> done) {
  call("/v3/lease/keepalive", etcd_json::lease_id_body(id),
       parsed(std::move(done), &etcd_json::parse_keepalive), std::min(timeout, settings_.request_timeout));
}

std::unique_ptr<EtcdWatch> EtcdClient::watch(std::string prefix, int64_t from_revision,
                                             WatchCallbacks callbacks) {
  return std::make_unique<EtcdWatch>(*this, std::move(prefix), from_revision, std::move(callbacks));
}

std::unique_ptr<EtcdLease> EtcdClient::keep_lease(int64_t ttl_s, std::function<void(int64_t)> on_change) {
  return std::make_unique<EtcdLease>(*this, ttl_s, std::move(on_change));
}

}  // namespace xcg
