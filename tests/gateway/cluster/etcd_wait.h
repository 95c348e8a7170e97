// Waiting on the etcd client's answers in tests: run the loop until the callback came.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <utility>

#include "base/event_loop.h"
#include "gateway/cluster/etcd_client.h"

namespace xcg::testing {

// `start(reply)` starts one client call; returns its answer, failing the test after 10 s.
template <class T, class Start>
Result<T> answer(EventLoop& loop, Start start) {
  std::optional<Result<T>> got;
  start([&](Result<T> r) { got.emplace(std::move(r)); });
  REQUIRE(loop.run_until([&] { return got.has_value(); }, std::chrono::seconds(10)));
  return std::move(*got);
}

inline RangeResult read(EventLoop& loop, EtcdClient& client, const std::string& key, bool prefix = false) {
  auto r = answer<RangeResult>(loop, [&](auto done) { client.range(key, prefix, done); });
  REQUIRE(r);
  return *r;
}

inline int64_t write(EventLoop& loop, EtcdClient& client, const std::string& key, const std::string& value,
                     int64_t lease = 0) {
  auto r = answer<int64_t>(loop, [&](auto done) { client.put(key, value, lease, done); });
  REQUIRE(r);
  return *r;
}

}  // namespace xcg::testing
