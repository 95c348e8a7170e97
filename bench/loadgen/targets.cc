#include <atomic>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

#include "bench/loadgen/options.h"

namespace xcg::bench {

std::unique_ptr<Targets> load_targets(const Options& o) {
  auto targets = std::make_unique<Targets>();
  for (unsigned i = o.first; i < o.first + o.count; ++i) {
    Target t;
    t.host = o.host;
    t.port = o.port;
    t.domain = fmt::format("{}{:04}", o.prefix, i);
    t.user = o.user.empty() ? t.domain : o.user;
    std::string path = o.keys_dir + "/" + t.domain;
    ssh_client::Key key = ssh_client::load_private_key(path);
    if (!key) throw std::runtime_error("cannot load the key " + path);
    t.key = key.get();
    targets->keys.push_back(std::move(key));
    targets->list.push_back(std::move(t));
  }
  return targets;
}

std::string make_token() {
  static const std::string nonce = [] {
    std::random_device rd;
    return fmt::format("{:08x}", rd());
  }();
  static std::atomic<uint64_t> counter{0};
  return fmt::format("Z{}{:x}Q", nonce, counter.fetch_add(1));
}

}  // namespace xcg::bench
