#include "gateway/cluster/keys_command.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <set>

#include "base/event_loop.h"
#include "gateway/cluster/etcd_config.h"
#include "gateway/cluster/key_map.h"

namespace xcg {
namespace {

constexpr std::chrono::milliseconds kDeadline{30000};

// One client on its own loop, for one command.
struct Session {
  EventLoop loop;
  EtcdClient client;
  std::chrono::milliseconds deadline;
  explicit Session(const config::ClusterSettings& cluster, std::chrono::milliseconds deadline = kDeadline)
      : client(loop, etcd_settings_of(cluster)), deadline(deadline) {}

  template <class T>
  Result<T> wait(const std::function<void(EtcdReply<T>)>& start) {
    std::optional<Result<T>> answer;
    start([&](Result<T> r) { answer = std::move(r); });
    if (!loop.run_until([&] { return answer.has_value(); }, deadline))
      return fail(Errc::timeout, "etcd did not answer in time");
    return std::move(*answer);
  }

  Result<RangeResult> range(const std::string& prefix) {
    return wait<RangeResult>(
        [&](EtcdReply<RangeResult> done) { client.range(prefix, true, std::move(done)); });
  }

  // Puts them all at once; the first failure, if any.
  Result<void> put_all(const std::vector<KeyEntry>& entries) {
    size_t left = entries.size();
    std::optional<Error> failed;
    for (const auto& e : entries)
      client.put(e.key, e.value, 0, [&](Result<int64_t> r) {
        --left;
        if (!r && !failed) failed = r.error();
      });
    if (!loop.run_until([&] { return left == 0; }, deadline))
      return fail(Errc::timeout, "etcd did not answer in time");
    if (failed) return tl::unexpected(*failed);
    return {};
  }
};

std::vector<KeyEntry> not_there(const std::vector<KeyEntry>& wanted, const RangeResult& now) {
  std::set<std::pair<std::string, std::string>> present;
  for (const auto& kv : now.kvs) present.emplace(kv.key, kv.value);
  std::vector<KeyEntry> out;
  for (const auto& e : wanted)
    if (!present.contains({e.key, e.value})) out.push_back(e);
  return out;
}

int etcd_failed(const Error& e) {
  fmt::print(stderr, "xcg: etcd: {}\n", e.message);
  return 1;
}

std::shared_ptr<const config::Config> read_files(const std::vector<std::string>& files) {
  try {
    return config::load_domain_files(files);
  } catch (const config::ConfigError& e) {
    for (const auto& p : e.problems()) fmt::print(stderr, "{}\n", p.str());
    return nullptr;
  }
}

}  // namespace

int import_keys(const config::ClusterSettings& cluster, const std::vector<std::string>& files) {
  auto domains = read_files(files);
  if (!domains) return 1;
  auto wanted = key_map_entries(cluster.prefix, domains->domains);
  Session etcd(cluster);
  auto now = etcd.range(keys_prefix(cluster.prefix));
  if (!now) return etcd_failed(now.error());
  auto writes = not_there(wanted, *now);
  if (auto put = etcd.put_all(writes); !put) return etcd_failed(put.error());
  fmt::print("{} keys of {} domains: {} written, {} already in etcd\n", wanted.size(),
             domains->domains.size(), writes.size(), wanted.size() - writes.size());
  return 0;
}

std::string key_map_status(const config::Config& config, std::chrono::milliseconds deadline) {
  const auto& cluster = *config.cluster;
  Session etcd(cluster, deadline);
  auto now = etcd.range(keys_prefix(cluster.prefix));
  if (!now) return fmt::format("warning: etcd: cannot read the key map: {}", now.error().message);
  auto map = read_key_map(cluster.prefix, now->kvs);
  size_t here = 0;
  for (const auto& [name, keys] : map.domains)
    if (config.is_front() || config.domains.contains(name)) here += keys.size();
  auto text = fmt::format("etcd: {} keys of {} domains ({} for the domains here)", map.key_count(),
                          map.domains.size(), here);
  for (const auto& p : map.problems) text += fmt::format("\nwarning: etcd: ignoring {}", p.str());
  return text;
}

int export_keys(const config::ClusterSettings& cluster) {
  Session etcd(cluster);
  auto now = etcd.range(keys_prefix(cluster.prefix));
  if (!now) return etcd_failed(now.error());
  auto map = read_key_map(cluster.prefix, now->kvs);
  for (const auto& p : map.problems) fmt::print(stderr, "xcg: left out {}\n", p.str());
  fmt::print("{}", key_map_yaml(map.domains));
  return 0;
}

}  // namespace xcg
