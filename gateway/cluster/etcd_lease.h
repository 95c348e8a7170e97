// One lease, kept alive at a third of its TTL. When etcd no longer knows it (this process was
// cut off for longer than the TTL), a new one is granted and the owner told, so that it puts
// its keys again under the new lease. An owner that sees its keys go before that (etcd 3.4
// revokes every lease when a leader that was hung resumes) has a new one granted at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "base/event_loop.h"

namespace xcg {

class EtcdClient;

class EtcdLease {
 public:
  // `on_change` gets each new lease's id, the first one included.
  EtcdLease(EtcdClient& client, int64_t ttl_s, std::function<void(int64_t lease)> on_change);
  EtcdLease(const EtcdLease&) = delete;
  EtcdLease& operator=(const EtcdLease&) = delete;
  ~EtcdLease();  // stops the keepalives; etcd drops the lease when its TTL runs out

  int64_t id() const { return id_; }  // 0 while there is none
  // Stops the keepalives and has etcd drop the lease now, with every key under it; `done` once
  // etcd has answered, or at once when there is no lease. No lease is granted after it.
  void revoke(std::function<void()> done);
  // etcd dropped the lease before a keepalive could tell: a new one now, unless a grant is
  // already under way or the lease was revoked.
  void renew();

 private:
  void grant();
  void refresh();
  void later(void (EtcdLease::*step)());

  EtcdClient& client_;
  int64_t ttl_s_;
  std::function<void(int64_t)> on_change_;
  int64_t id_ = 0;
  bool revoked_ = false;
  EventLoop::Timer timer_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // for answers that outlive us
};

}  // namespace xcg
