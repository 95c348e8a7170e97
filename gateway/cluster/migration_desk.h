// A node's side of simulated live migrations (docs/fleet.md, "Migration"), through
// migrations/<domain> in etcd, which every node watches:
//   source: asked (to: the destination)  ->  destination: ready, or refused with its reason
//   source: its guest leaves, moved      ->  destination: starts the guest, deletes the record
// The destination then claims domains/<domain> as for any start; the source has let its record
// go. The broker supplies what each step does to its domains (Hooks).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/error.h"
#include "base/event_loop.h"
#include "gateway/cluster/etcd_client.h"
#include "gateway/cluster/migration_record.h"

namespace xcg {

class MigrationDesk {
 public:
  struct Hooks {
    // Destination: why this node cannot take the domain, or nullopt when it can.
    std::function<std::optional<std::string>(const std::string& domain)> refusal;
    // Destination: the domain is gone from its source; start it here.
    std::function<void(const std::string& domain)> arrive;
    // Source: the destination is ready; the domain leaves this node.
    std::function<Result<void>(const std::string& domain, const std::string& to)> leave;
  };
  using Done = std::function<void(Result<std::string>)>;  // what the operator reads
  static constexpr auto kAnswerTimeout = std::chrono::seconds(3);

  MigrationDesk(EventLoop& loop, EtcdClient& client, const std::string& prefix, std::string node,
                Hooks hooks);
  MigrationDesk(const MigrationDesk&) = delete;
  MigrationDesk& operator=(const MigrationDesk&) = delete;
  ~MigrationDesk();

  // Source: asks `to` to take `domain`; `done` once it moved or could not.
  void migrate(const std::string& domain, const std::string& to, Done done);
  // Why a lifecycle action on `domain` must wait: "web1 is migrating to node-b", "web1 moved
  // to node-b" (until it arrives here again), or nullopt.
  std::optional<std::string> busy(const std::string& domain) const;

 private:
  struct Outgoing {
    std::string to;
    Done done;
    EventLoop::Timer timeout;
  };
  // `revision`: the record's mod_revision; each step is written against it, so that a record
  // removed meanwhile (the source gave up waiting) is not written again.
  void on_record(const std::string& domain, const MigrationRecord& record, int64_t revision);
  void answer(const std::string& domain, const MigrationRecord& asked, int64_t revision);
  void hand_over(const std::string& domain, const MigrationRecord& ready, int64_t revision);
  void refused(const std::string& domain, const MigrationRecord& record);
  void arrived(const std::string& domain);
  void write(const std::string& domain, const MigrationRecord& record, int64_t revision);
  void finish(const std::string& domain, Result<std::string> outcome);
  void erase_record(const std::string& domain);
  std::string key(const std::string& domain) const { return prefix_ + domain; }

  EventLoop& loop_;
  EtcdClient& client_;
  std::string prefix_;  // <prefix>migrations/
  std::string node_;
  Hooks hooks_;
  std::map<std::string, Outgoing> outgoing_;
  std::map<std::string, std::string> moved_;               // domain -> the node it moved to
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // for answers that outlive us
  std::unique_ptr<EtcdWatch> watch_;
};

}  // namespace xcg
