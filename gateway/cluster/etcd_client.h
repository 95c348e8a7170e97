// An asynchronous etcd v3 client: the JSON gateway over libcurl's multi interface, on the
// process's EventLoop (docs/fleet.md, "The etcd client"). Every operation answers through a
// callback, later, from the loop; none blocks.
//
// A request that cannot reach its endpoint, or that the member answers it cannot serve now
// (no leader), moves to the next endpoint and is tried again there, once per endpoint.
//
// Callbacks must not destroy the client; they may destroy watches and leases. The client must
// outlive its watches and leases.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/event_loop.h"
#include "gateway/cluster/curl_multi.h"
#include "gateway/cluster/etcd_json.h"

namespace xcg {

struct EtcdSettings {
  // "https://host:port"; "http://" only to a loopback address.
  std::vector<std::string> endpoints;
  std::string ca_file, cert_file, key_file;
  std::chrono::milliseconds request_timeout{2000};
  std::chrono::milliseconds connect_timeout{1000};
  // Keys per request when a watch reads its prefix whole: one answer stays small and quick to
  // give, however many keys the prefix holds.
  size_t range_page = 2000;
};

// Whether the endpoints are usable: some, each http(s)://host:port, plain http on loopback only.
Result<void> check_endpoints(const std::vector<std::string>& endpoints);

// How one endpoint has been answering, for the operator (`xcg ctl cluster`).
struct EndpointHealth {
  std::string url;
  bool answered = false;  // its last answer, if any, came after its last failure
  std::optional<std::chrono::system_clock::time_point> failing_since;  // while it fails
  std::string last_error;                                              // kept once it answers again
};

template <class T>
using EtcdReply = std::function<void(Result<T>)>;

class EtcdWatch;
struct WatchCallbacks;
class EtcdLease;

class EtcdClient {
 public:
  EtcdClient(EventLoop& loop, EtcdSettings settings);  // throws std::invalid_argument, std::runtime_error
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;
  ~EtcdClient();  // answers nothing still in flight

  void range(const std::string& key, bool prefix, EtcdReply<RangeResult> done);
  void range_page(const RangePage& page, EtcdReply<RangeResult> done);
  size_t range_page_size() const { return settings_.range_page; }
  void put(const std::string& key, const std::string& value, int64_t lease,
           EtcdReply<int64_t> done);  // the revision
  void delete_range(const std::string& key, bool prefix, EtcdReply<int64_t> done);
  // Puts only if the key's mod_revision is still `mod_revision` (0: the key must not exist).
  void txn_put_if(const std::string& key, int64_t mod_revision, const std::string& value, int64_t lease,
                  EtcdReply<TxnResult> done);
  // Deletes only if the key's mod_revision is still `mod_revision`.
  void txn_delete_if(const std::string& key, int64_t mod_revision, EtcdReply<TxnResult> done);
  void compact(int64_t revision, EtcdReply<void> done);
  void lease_grant(int64_t ttl_s, EtcdReply<LeaseGrant> done);
  // The TTL left; 0: the lease is gone. Each endpoint gets at most `timeout` (and no more than
  // any request), so that a hung member costs a lease only part of its TTL.
  void lease_keepalive(int64_t id, std::chrono::milliseconds timeout, EtcdReply<int64_t> done);
  void lease_revoke(int64_t id, EtcdReply<void> done);  // its keys go at once

  // Events under `prefix` from `from_revision` on; with 0, the prefix is read whole first and
  // handed over as a snapshot. See etcd_watch.h.
  [[nodiscard]] std::unique_ptr<EtcdWatch> watch(std::string prefix, int64_t from_revision,
                                                 WatchCallbacks callbacks);
  // One lease of `ttl_s` seconds, kept alive. See etcd_lease.h.
  [[nodiscard]] std::unique_ptr<EtcdLease> keep_lease(int64_t ttl_s,
                                                      std::function<void(int64_t lease)> on_change);

  // For EtcdWatch: a stream on the endpoint `index` names.
  [[nodiscard]] std::unique_ptr<HttpCall> stream(const std::string& path, std::string body,
                                                 HttpCall::OnData on_data, HttpCall::OnDone on_done,
                                                 size_t index);
  // The endpoint in use, or when `taken` is it, the next one after `taken` that is not failing
  // (the next one, when all are). `taken` past the last endpoint: none is.
  size_t endpoint_besides(size_t taken) const;
  // The endpoint `index` failed (`why`): move on from it, unless another failure already did.
  void endpoint_failed(size_t index, const std::string& why);
  size_t current_endpoint() const { return current_; }
  const std::vector<EndpointHealth>& endpoint_health() const { return health_; }
  // The last request was answered, and no endpoint has failed since (the metrics' etcd up).
  bool reachable() const { return reachable_; }
  EventLoop& loop() { return loop_; }

 private:
  struct Pending;
  void call(std::string path, std::string body, EtcdReply<std::string> done,
            std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  void attempt(uint64_t id);
  void attempted(uint64_t id, size_t index, Result<HttpResponse> response);
  void endpoint_answered(size_t index);
  HttpRequest request(size_t index, const std::string& path, std::string body,
                      std::chrono::milliseconds timeout) const;

  EventLoop& loop_;
  EtcdSettings settings_;
  CurlMulti multi_;
  size_t current_ = 0;
  std::vector<EndpointHealth> health_;  // one per endpoint, in the same order
  bool reachable_ = false;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::unique_ptr<Pending>> pending_;
};

}  // namespace xcg
