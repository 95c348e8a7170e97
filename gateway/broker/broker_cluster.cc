// With `cluster:`: the key map comes from etcd (docs/fleet.md). Each change of it makes a new
// effective config, applied to the sessions logged in as a reload of the files is.
#include <fmt/format.h>

#include "base/log.h"
#include "gateway/broker/broker.h"

namespace xcg::gateway {

// Starts with no keys at all rather than waiting: the loop must not block, and a login that
// waits for etcd is refused either way. The first snapshot lets customers in.
void Broker::start_key_map() {
  if (!config_->cluster) return;
  file_config_ = config_;
  config_ = config::with_domain_keys(*file_config_, {});
  key_feed_ = std::make_unique<KeyMapFeed>(fleet_->etcd(), config_->cluster->prefix,
                                           [this](const KeyMap& map) { on_key_map(map); });
  log::info("key map: reading {} from etcd; no customer can log in until it has been read",
            keys_prefix(config_->cluster->prefix));
}

std::shared_ptr<const config::Config> Broker::effective(
    std::shared_ptr<const config::Config> from_files) const {
  // A `cluster:` added by a reload takes a restart (restart_only_changes says so).
  if (!from_files->cluster || !key_feed_) return from_files;
  return config::with_domain_keys(*from_files, etcd_keys_);
}

void Broker::on_key_map(const KeyMap& map) {
  etcd_keys_ = map.domains;
  config_ = effective(file_config_);
  unsigned revoked = apply_rights();
  size_t mine = 0;
  for (const auto& [name, d] : config_->domains) mine += d.keys.size();
  log::info("key map from etcd: {} keys, {} for the domains here; {} sessions ended", map.key_count(), mine,
            revoked);
}

}  // namespace xcg::gateway
