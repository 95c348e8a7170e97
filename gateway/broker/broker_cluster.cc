// With `cluster:`: the key map comes from etcd (docs/fleet.md). The map read whole makes a new
// effective config, applied to the sessions logged in as a reload of the files is; a change
// sets the keys of the domains it touches in that config and checks only their sessions.
#include <fmt/format.h>

#include "base/log.h"
#include "gateway/broker/broker.h"

namespace xcg::gateway {

// Starts with no keys at all rather than waiting: the loop must not block, and a login that
// waits for etcd is refused either way. The first snapshot lets customers in.
void Broker::start_key_map() {
  if (!config_->cluster) return;
  file_config_ = config_;
  keyed_ = config::with_domain_keys(*file_config_, {});
  config_ = keyed_;
  key_feed_ = std::make_unique<KeyMapFeed>(
      fleet_->etcd(), config_->cluster->prefix,
      KeyMapCallbacks{.on_whole = [this](const KeyMap& map) { on_key_map(map); },
                      .on_change = [this](const KeyMapChange& change) { on_key_change(change); }});
  log::info("key map: reading {} from etcd; no customer can log in until it has been read",
            keys_prefix(config_->cluster->prefix));
}

std::shared_ptr<const config::Config> Broker::effective(std::shared_ptr<const config::Config> from_files) {
  // A `cluster:` added by a reload takes a restart (restart_only_changes says so).
  if (!from_files->cluster || !key_feed_) {
    keyed_.reset();
    return from_files;
  }
  keyed_ = config::with_domain_keys(*from_files, etcd_keys_);
  keys_here_ = 0;
  for (const auto& [name, d] : keyed_->domains) keys_here_ += d.keys.size();
  return keyed_;
}

void Broker::on_key_map(const KeyMap& map) {
  etcd_keys_ = map.domains;
  config_ = effective(file_config_);
  unsigned revoked = apply_rights();
  log::info("key map from etcd: {} keys, {} for the domains here; {} sessions ended", map.key_count(),
            keys_here_, revoked);
}

void Broker::on_key_change(const KeyMapChange& change) {
  for (const auto& [domain, keys] : change.domains) {
    if (keys.empty()) etcd_keys_.erase(domain);
    else etcd_keys_[domain] = keys;
    if (!keyed_) continue;  // `cluster:` gone from the files: nothing takes keys until a restart
    auto before = keyed_->domains.find(domain);
    keys_here_ -= before == keyed_->domains.end() ? 0 : before->second.keys.size();
    config::set_domain_keys(*keyed_, domain, keys);
    auto after = keyed_->domains.find(domain);
    keys_here_ += after == keyed_->domains.end() ? 0 : after->second.keys.size();
  }
  unsigned revoked = apply_rights(&change.domains);
  log::info("key map from etcd: {} keys, {} for the domains here; {} sessions ended", key_feed_->key_count(),
            keys_here_, revoked);
}

}  // namespace xcg::gateway
