#include "gateway/cluster/migration_desk.h"

#include <utility>

#include <fmt/format.h>

#include "base/log.h"
#include "gateway/cluster/etcd_watch.h"

namespace xcg {

MigrationDesk::MigrationDesk(EventLoop& loop, EtcdClient& client, const std::string& prefix, std::string node,
                             Hooks hooks)
    : loop_(loop),
      client_(client),
      prefix_(migrations_prefix(prefix)),
      node_(std::move(node)),
      hooks_(std::move(hooks)) {
  auto apply = [this](const KeyValue& kv) {
    auto record = decode_migration(kv.value);
    if (!record) return log::warn("migration: ignoring a malformed record {}", kv.key);
    on_record(kv.key.substr(prefix_.size()), *record, kv.mod_revision);
  };
  WatchCallbacks callbacks{[apply](const RangeResult& r) {
                             for (const auto& kv : r.kvs) apply(kv);
                           },
                           [apply](const std::vector<WatchEvent>& events) {
                             for (const auto& e : events)
                               if (e.type == WatchEvent::Type::put) apply(e.kv);
                           }};
  watch_ = client_.watch(prefix_, 0, std::move(callbacks));
}

MigrationDesk::~MigrationDesk() = default;

void MigrationDesk::migrate(const std::string& domain, const std::string& to, Done done) {
  if (auto it = outgoing_.find(domain); it != outgoing_.end())
    return done(fail(Errc::wrong_state, fmt::format("{} is already migrating to {}", domain, it->second.to)));
  auto expire = [this, domain, to] {
    finish(domain, fail(Errc::timeout, fmt::format("{} did not answer within {} s; {} stays here", to,
                                                   kAnswerTimeout.count(), domain)));
    erase_record(domain);
  };
  outgoing_[domain] =
      Outgoing{to, std::move(done), loop_.timer(kAnswerTimeout, "migration of " + domain, expire)};
  log::info("migration: asking {} to take {}", to, domain);
  auto asked = encode_migration({node_, to, MigrationStep::asked, ""});
  client_.txn_put_if(
      key(domain), 0, asked, 0, [alive = std::weak_ptr<int>(alive_), this, domain](Result<TxnResult> r) {
        if (alive.expired()) return;
        if (!r) return finish(domain, fail(Errc::unavailable, "etcd: " + r.error().message));
        if (!r->succeeded)
          finish(domain, fail(Errc::wrong_state, fmt::format("a migration of {} is already recorded ({})",
                                                             domain, key(domain))));
      });
}

std::optional<std::string> MigrationDesk::busy(const std::string& domain) const {
  if (auto it = outgoing_.find(domain); it != outgoing_.end())
    return fmt::format("{} is migrating to {}", domain, it->second.to);
  if (auto it = moved_.find(domain); it != moved_.end())
    return fmt::format("{} moved to {}", domain, it->second);
  return std::nullopt;
}

void MigrationDesk::on_record(const std::string& domain, const MigrationRecord& record, int64_t revision) {
  bool to_me = record.to == node_, from_me = record.from == node_;
  if (to_me && record.step == MigrationStep::asked) return answer(domain, record, revision);
  if (to_me && record.step == MigrationStep::moved) return arrived(domain);
  if (from_me && record.step == MigrationStep::ready) return hand_over(domain, record, revision);
  if (from_me && record.step == MigrationStep::refused) return refused(domain, record);
}

// Destination: whether it can take the domain, in the record.
void MigrationDesk::answer(const std::string& domain, const MigrationRecord& asked, int64_t revision) {
  MigrationRecord reply = asked;
  auto why = hooks_.refusal(domain);
  reply.step = why ? MigrationStep::refused : MigrationStep::ready;
  reply.error = why.value_or("");
  log::info("migration: {} asks for {}: {}", asked.from, domain, why ? "refused, " + *why : "ready");
  write(domain, reply, revision);
}

// Source: the destination is ready; the domain leaves, and the destination is told.
void MigrationDesk::hand_over(const std::string& domain, const MigrationRecord& ready, int64_t revision) {
  auto it = outgoing_.find(domain);
  if (it == outgoing_.end() || it->second.to != ready.to) return;
  if (auto left = hooks_.leave(domain, ready.to); !left) {
    finish(domain, tl::unexpected(left.error()));
    return erase_record(domain);
  }
  moved_[domain] = ready.to;
  MigrationRecord moved = ready;
  moved.step = MigrationStep::moved;
  write(domain, moved, revision);
  finish(domain, fmt::format("{} moved to {}", domain, ready.to));
}

void MigrationDesk::refused(const std::string& domain, const MigrationRecord& record) {
  if (!outgoing_.contains(domain)) return;
  finish(domain, fail(Errc::wrong_state, record.error));
  erase_record(domain);
}

void MigrationDesk::arrived(const std::string& domain) {
  log::info("migration: {} arrives", domain);
  moved_.erase(domain);
  hooks_.arrive(domain);
  erase_record(domain);
}

void MigrationDesk::write(const std::string& domain, const MigrationRecord& record, int64_t revision) {
  client_.txn_put_if(key(domain), revision, encode_migration(record), 0, [domain](Result<TxnResult> r) {
    if (!r) return log::warn("migration: writing the record of {} failed: {}", domain, r.error().message);
    if (!r->succeeded) log::info("migration: the record of {} changed meanwhile; not written", domain);
  });
}

void MigrationDesk::finish(const std::string& domain, Result<std::string> outcome) {
  auto it = outgoing_.find(domain);
  if (it == outgoing_.end()) return;
  Done done = std::move(it->second.done);
  outgoing_.erase(it);
  if (!outcome) log::warn("migration of {}: {}", domain, outcome.error().message);
  done(std::move(outcome));
}

void MigrationDesk::erase_record(const std::string& domain) {
  client_.delete_range(key(domain), false, [domain](Result<int64_t> r) {
    if (!r) log::warn("migration: removing the record of {} failed: {}", domain, r.error().message);
  });
}

}  // namespace xcg
