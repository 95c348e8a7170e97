#include "gateway/cluster/etcd_lease.h"

#include <chrono>
#include <utility>

#include "base/log.h"
#include "gateway/cluster/etcd_client.h"

namespace xcg {

EtcdLease::EtcdLease(EtcdClient& client, int64_t ttl_s, std::function<void(int64_t)> on_change)
    : client_(client), ttl_s_(ttl_s), on_change_(std::move(on_change)) {
  grant();
}

EtcdLease::~EtcdLease() = default;

void EtcdLease::later(void (EtcdLease::*step)()) {
  timer_ = client_.loop().timer(std::chrono::milliseconds(ttl_s_ * 1000 / 3), "etcd lease",
                                [this, step] { (this->*step)(); });
}

void EtcdLease::grant() {
  client_.lease_grant(ttl_s_, [this, alive = std::weak_ptr<int>(alive_)](Result<LeaseGrant> r) {
    if (alive.expired() || revoked_) return;
    if (!r) {
      log::warn("etcd: granting a lease failed: {}", r.error().message);
      return later(&EtcdLease::grant);
    }
    id_ = r->id;
    later(&EtcdLease::refresh);
    on_change_(id_);  // may destroy us: nothing after it
  });
}

// A keepalive tries each endpoint for at most a quarter of the TTL: one stuck on a hung member
// for the whole request timeout would let a short lease run out before the next one answers.
void EtcdLease::refresh() {
  client_.lease_keepalive(id_, std::chrono::milliseconds(ttl_s_ * 1000 / 4),
                          [this, id = id_, alive = std::weak_ptr<int>(alive_)](Result<int64_t> ttl) {
                            if (alive.expired() || revoked_ || id != id_) return;  // renewed meanwhile
                            if (!ttl) {
                              log::warn("etcd: keeping lease {:x} alive failed: {}", id_,
                                        ttl.error().message);
                              return later(&EtcdLease::refresh);
                            }
                            if (*ttl > 0) return later(&EtcdLease::refresh);
                            log::warn("etcd: lease {:x} expired; granting a new one", id_);
                            id_ = 0;
                            grant();
                          });
}

void EtcdLease::renew() {
  if (revoked_ || id_ == 0) return;
  log::warn("etcd: lease {:x} was dropped; granting a new one", id_);
  id_ = 0;
  timer_.reset();
  grant();
}

void EtcdLease::revoke(std::function<void()> done) {
  revoked_ = true;
  timer_.reset();
  int64_t id = std::exchange(id_, 0);
  if (id == 0) return done();
  client_.lease_revoke(id, [id, done = std::move(done)](Result<void> r) {
    if (!r) log::warn("etcd: revoking lease {:x} failed: {}", id, r.error().message);
    done();
  });
}

}  // namespace xcg
