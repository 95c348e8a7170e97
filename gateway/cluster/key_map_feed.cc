#include "gateway/cluster/key_map_feed.h"

#include <algorithm>
#include <set>

#include "base/log.h"

namespace xcg {
namespace {

constexpr std::chrono::milliseconds kCheckEvery{500};
// A new stream is down for a moment after each snapshot: only this many checks in a row count.
constexpr unsigned kDownChecks = 2;

}  // namespace

KeyMapFeed::KeyMapFeed(EtcdClient& client, std::string prefix, OnChange on_change)
    : loop_(client.loop()), prefix_(std::move(prefix)), on_change_(std::move(on_change)) {
  watch_ = client.watch(keys_prefix(prefix_), 0,
                        WatchCallbacks{.on_snapshot = [this](const RangeResult& r) { on_snapshot(r); },
                                       .on_events = [this](const auto& events) { on_events(events); }});
  check_reach();
}

void KeyMapFeed::check_reach() {
  bool up = watch_->reachable();
  if (!up && loaded_ && ++down_checks_ == kDownChecks)
    log::warn("key map: etcd cannot be reached; the last key map ({} keys) stays in use", key_count_);
  if (up && down_checks_ >= kDownChecks) log::info("key map: etcd is reachable again");
  if (up) down_checks_ = 0;
  check_ = loop_.timer(kCheckEvery, "key map check", [this] { check_reach(); });
}

void KeyMapFeed::on_snapshot(const RangeResult& r) {
  entries_.clear();
  for (const auto& kv : r.kvs) entries_.insert_or_assign(kv.key, read_key_entry(prefix_, kv));
  loaded_ = true;
  revision_ = r.revision;
  publish(nullptr);
}

void KeyMapFeed::on_events(const std::vector<WatchEvent>& events) {
  std::set<std::string> changed;
  for (const auto& e : events) {
    changed.insert(e.kv.key);
    revision_ = std::max(revision_, e.kv.mod_revision);
    if (e.type == WatchEvent::Type::del) entries_.erase(e.kv.key);
    else entries_.insert_or_assign(e.kv.key, read_key_entry(prefix_, e.kv));
  }
  if (loaded_) publish(&changed);
}

void KeyMapFeed::publish(const std::set<std::string>* changed) {
  auto map = assemble_key_map(entries_);
  for (const auto& p : map.problems)
    if (!changed || changed->contains(p.key)) log::warn("key map: ignoring {}", p.str());
  key_count_ = map.key_count();
  on_change_(map);
}

}  // namespace xcg
