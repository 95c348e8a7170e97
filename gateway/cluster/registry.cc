#include "gateway/cluster/registry.h"

#include <algorithm>
#include <utility>

#include "base/log.h"

namespace xcg {
namespace {

constexpr int kClaimRetries = 2;  // a start reads again at most this often when its write lost a race

}  // namespace

RegistryWriter::RegistryWriter(EtcdClient& client, std::string prefix, std::string node, NodeInfo info,
                               int64_t lease_ttl_s)
    : client_(client),
      prefix_(std::move(prefix)),
      node_(std::move(node)),
      info_(std::move(info)),
      lease_ttl_s_(lease_ttl_s) {
  lease_ = client_.keep_lease(lease_ttl_s, [this](int64_t lease) { on_lease(lease); });
  watch_node();
}

RegistryWriter::~RegistryWriter() = default;

// Wraps an answer's handler so that it does nothing once this writer is gone.
template <class F>
auto RegistryWriter::guarded(F f) {
  return [alive = std::weak_ptr<int>(alive_), f = std::move(f)](auto r) mutable {
    if (!alive.expired()) f(std::move(r));
  };
}

std::string RegistryWriter::domain_key(const std::string& domain) const {
  return domains_prefix(prefix_) + domain;
}

void RegistryWriter::on_lease(int64_t lease) {
  put_node(lease);
  recheck();  // after a lapse long enough to lose the lease, another node may have our domains
}

void RegistryWriter::put_node(int64_t lease) {
  registered_ = false;
  client_.put(nodes_prefix(prefix_) + node_, encode_node(info_), lease,
              guarded([this, lease](Result<int64_t> r) {
                if (!r) return log::warn("registry: putting node {} failed: {}", node_, r.error().message);
                registered_ = lease == lease_->id();
                if (!registered_) return;
                node_revision_ = *r;
                log::info("registry: node {} registered", node_);
              }));
}

// The prefix nodes/<node> also holds nodes/<node>x: only the node's own key counts.
void RegistryWriter::watch_node() {
  std::string key = nodes_prefix(prefix_) + node_;
  auto on_snapshot = [this, key](const RangeResult& r) {
    bool there = std::any_of(r.kvs.begin(), r.kvs.end(), [&](const KeyValue& kv) { return kv.key == key; });
    if (!there) node_deleted(r.revision);
  };
  auto on_events = [this, key](const std::vector<WatchEvent>& events) {
    for (const auto& e : events)
      if (e.type == WatchEvent::Type::del && e.kv.key == key) node_deleted(e.kv.mod_revision);
  };
  node_watch_ = client_.watch(key, 0, WatchCallbacks{on_snapshot, on_events});
}

// Only a deletion after this node's last put means it is not registered.
void RegistryWriter::node_deleted(int64_t revision) {
  if (!registered_ || revision <= node_revision_) return;
  log::warn("registry: nodes/{} was deleted; registering again under a new lease", node_);
  registered_ = false;
  lease_->renew();
}

// This node's record of `domain` is at `mod_revision`; one released while it was being
// written goes again.
void RegistryWriter::hold(const std::string& domain, int64_t mod_revision) {
  held_[domain] = mod_revision;
  if (!wanted_.contains(domain)) release(domain);
}

void RegistryWriter::claim(const std::string& domain) {
  wanted_.insert(domain);
  read_and_claim(domain, kClaimRetries);
}

void RegistryWriter::read_and_claim(const std::string& domain, int retries) {
  client_.range(domain_key(domain), false, guarded([this, domain, retries](Result<RangeResult> r) {
                  if (!r)
                    return log::warn("registry: reading domain {} failed: {}", domain, r.error().message);
                  if (r->kvs.empty()) return write_claim(domain, 0, retries);
                  const KeyValue& now = r->kvs.front();
                  if (now.value == node_ && !let_go_.contains(domain)) {
                    hold(domain, now.mod_revision);
                    return;
                  }
                  write_claim(domain, now.mod_revision, retries);
                }));
}

void RegistryWriter::write_claim(const std::string& domain, int64_t mod_revision, int retries) {
  client_.txn_put_if(
      domain_key(domain), mod_revision, node_, 0,
      guarded([this, domain, retries](Result<TxnResult> r) { claimed(domain, std::move(r), retries); }));
}

// A start whose record changed between its read and its write (another node's offer, say)
// reads again: the domain runs here. A recheck's write (no retries) that fails is a stale
// node's, which gives way.
void RegistryWriter::claimed(const std::string& domain, Result<TxnResult> r, int retries) {
  if (!r) return log::warn("registry: writing domain {} failed: {}", domain, r.error().message);
  if (r->succeeded) {
    log::info("registry: domain {} recorded for node {} at revision {}", domain, node_, r->revision);
    let_go_.erase(domain);
    hold(domain, r->revision);
    return;
  }
  std::string owner = r->current ? r->current->value : "nobody";
  if (retries > 0 && wanted_.contains(domain)) {
    log::info("registry: domain {} was recorded for node {} meanwhile; claiming it again", domain, owner);
    return read_and_claim(domain, retries - 1);
  }
  held_.erase(domain);
  log::warn("registry: domain {} is recorded for node {} since; this node's record was stale", domain, owner);
}

void RegistryWriter::let_go(const std::string& domain) {
  held_.erase(domain);
  let_go_.insert(domain);
}

void RegistryWriter::offer(const std::string& domain) {
  wanted_.insert(domain);
  if (held_.contains(domain)) return;
  client_.txn_put_if(domain_key(domain), 0, node_, 0, guarded([this, domain](Result<TxnResult> r) {
                       if (!r)
                         return log::warn("registry: writing domain {} failed: {}", domain,
                                          r.error().message);
                       if (r->succeeded) hold(domain, r->revision);
                       if (r->current && r->current->value == node_) hold(domain, r->current->mod_revision);
                     }));
}

void RegistryWriter::release(const std::string& domain) {
  wanted_.erase(domain);
  auto it = held_.find(domain);
  if (it == held_.end()) return;
  int64_t mod_revision = it->second;
  held_.erase(it);
  client_.txn_delete_if(domain_key(domain), mod_revision, guarded([domain](Result<TxnResult> r) {
                          if (!r)
                            log::warn("registry: removing domain {} failed: {}", domain, r.error().message);
                        }));
}

void RegistryWriter::recheck() {
  for (const auto& [domain, mod_revision] : held_) write_claim(domain, mod_revision, 0);
}

void RegistryWriter::leave(std::function<void()> done) {
  registered_ = false;  // the revocation deletes nodes/<node>: that is no cause to register again
  lease_->revoke([node = node_, done = std::move(done)] {
    log::info("registry: node {} left: its lease is revoked", node);
    done();
  });
}

}  // namespace xcg
