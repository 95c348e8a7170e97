#include "gateway/cluster/key_map_feed.h"

#include <algorithm>

#include "base/log.h"

namespace xcg {
namespace {

constexpr std::chrono::milliseconds kCheckEvery{500};
// A new stream is down for a moment after each snapshot: only this many checks in a row count.
constexpr unsigned kDownChecks = 2;

void log_problems(const std::vector<KeyMapProblem>& problems) {
  for (const auto& p : problems) log::warn("key map: ignoring {}", p.str());
}

}  // namespace

KeyMapFeed::KeyMapFeed(EtcdClient& client, std::string prefix, KeyMapCallbacks callbacks)
    : loop_(client.loop()), callbacks_(std::move(callbacks)), state_(prefix) {
  watch_ = client.watch(keys_prefix(prefix), 0,
                        WatchCallbacks{.on_snapshot = [this](const RangeResult& r) { on_snapshot(r); },
                                       .on_events = [this](const auto& events) { on_events(events); }});
  check_reach();
}

void KeyMapFeed::check_reach() {
  bool up = watch_->reachable();
  if (!up && loaded_ && ++down_checks_ == kDownChecks)
    log::warn("key map: etcd cannot be reached; the last key map ({} keys) stays in use", key_count());
  if (up && down_checks_ >= kDownChecks) log::info("key map: etcd is reachable again");
  if (up) down_checks_ = 0;
  check_ = loop_.timer(kCheckEvery, "key map check", [this] { check_reach(); });
}

void KeyMapFeed::on_snapshot(const RangeResult& r) {
  KeyMap map = state_.reset(r.kvs);
  loaded_ = true;
  revision_ = r.revision;
  log_problems(map.problems);
  callbacks_.on_whole(map);
}

void KeyMapFeed::on_events(const std::vector<WatchEvent>& events) {
  KeyMapChange change = state_.apply(events);
  for (const auto& e : events) revision_ = std::max(revision_, e.kv.mod_revision);
  if (!loaded_) return;
  log_problems(change.problems);
  callbacks_.on_change(change);
}

}  // namespace xcg
