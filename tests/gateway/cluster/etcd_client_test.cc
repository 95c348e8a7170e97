// The etcd client against a real etcd (tests/gateway/cluster/etcd_fixture.h).
#include "gateway/cluster/etcd_client.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <vector>

#include "gateway/cluster/etcd_lease.h"
#include "gateway/cluster/etcd_watch.h"
#include "tests/gateway/cluster/etcd_fixture.h"
#include "tests/gateway/cluster/etcd_wait.h"

using namespace xcg;
using namespace xcg::testing;
using namespace std::chrono_literals;

namespace {

EtcdSettings settings_for(std::vector<std::string> endpoints) {
  EtcdSettings s;
  s.endpoints = std::move(endpoints);
  s.request_timeout = 1000ms;
  s.connect_timeout = 500ms;
  return s;
}

// What a watch delivered, flattened: "put KEY=VALUE", "del KEY", "snapshot N"; and the
// revisions of the changes.
struct Seen {
  std::vector<std::string> lines;
  std::vector<int64_t> revisions;
  WatchCallbacks callbacks() {
    return WatchCallbacks{[this](const RangeResult& r) {
                            lines.push_back("snapshot " + std::to_string(r.kvs.size()));
                            for (const auto& kv : r.kvs) lines.push_back("has " + kv.key + "=" + kv.value);
                          },
                          [this](const std::vector<WatchEvent>& events) {
                            for (const auto& e : events) revisions.push_back(e.kv.mod_revision);
                            for (const auto& e : events)
                              lines.push_back(e.type == WatchEvent::Type::put
                                                  ? "put " + e.kv.key + "=" + e.kv.value
                                                  : "del " + e.kv.key);
                          }};
  }
  bool wait_for(EventLoop& loop, size_t n) {
    return loop.run_until([&] { return lines.size() >= n; }, 10s);
  }
};

bool gone_within(EventLoop& loop, EtcdClient& client, const std::string& key,
                 std::chrono::milliseconds deadline) {
  return loop.run_until([&] { return read(loop, client, key).kvs.empty(); }, deadline);
}

}  // namespace

TEST_CASE("put, range and delete on a real etcd", "[etcd]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for(cluster.endpoints()));
  write(loop, client, "/t/a/1", "one");
  write(loop, client, "/t/a/2", "two");
  write(loop, client, "/t/b", "other");
  auto a = read(loop, client, "/t/a/", true);
  REQUIRE(a.kvs.size() == 2);
  CHECK(a.kvs[0].value == "one");
  CHECK(a.kvs[1].key == "/t/a/2");
  CHECK(read(loop, client, "/t/a/1").kvs.size() == 1);
  auto deleted = answer<int64_t>(loop, [&](auto done) { client.delete_range("/t/a/", true, done); });
  REQUIRE(deleted);
  CHECK(read(loop, client, "/t/a/", true).kvs.empty());
  CHECK(read(loop, client, "/t/b").kvs.size() == 1);
}

TEST_CASE("a transaction with a stale mod revision is refused", "[etcd]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for(cluster.endpoints()));
  auto created = answer<TxnResult>(loop, [&](auto done) { client.txn_put_if("/t/d", 0, "node1", 0, done); });
  REQUIRE(created);
  REQUIRE(created->succeeded);
  auto again = answer<TxnResult>(loop, [&](auto done) { client.txn_put_if("/t/d", 0, "node9", 0, done); });
  REQUIRE(again);
  CHECK_FALSE(again->succeeded);
  int64_t first = created->revision;
  auto moved =
      answer<TxnResult>(loop, [&](auto done) { client.txn_put_if("/t/d", first, "node2", 0, done); });
  REQUIRE(moved);
  CHECK(moved->succeeded);
  auto stale =
      answer<TxnResult>(loop, [&](auto done) { client.txn_put_if("/t/d", first, "node1", 0, done); });
  REQUIRE(stale);
  CHECK_FALSE(stale->succeeded);
  REQUIRE(stale->current);
  CHECK(stale->current->value == "node2");
  CHECK(stale->current->mod_revision == moved->revision);
  auto stale_delete = answer<TxnResult>(loop, [&](auto done) { client.txn_delete_if("/t/d", first, done); });
  REQUIRE(stale_delete);
  CHECK_FALSE(stale_delete->succeeded);
  CHECK(read(loop, client, "/t/d").kvs.at(0).value == "node2");
}

TEST_CASE("a kept lease holds its key; when the keepalives stop, etcd drops it", "[etcd]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for(cluster.endpoints()));
  std::vector<int64_t> leases;
  auto lease = client.keep_lease(1, [&](int64_t id) { leases.push_back(id); });
  REQUIRE(loop.run_until([&] { return !leases.empty(); }, 5s));
  write(loop, client, "/t/node", "up", leases.back());
  loop.run_until([] { return false; }, 3000ms);  // three TTLs
  CHECK(read(loop, client, "/t/node").kvs.size() == 1);
  CHECK(leases.size() == 1);
  lease.reset();
  CHECK(gone_within(loop, client, "/t/node", 5s));
}

TEST_CASE("a lease etcd lost is granted again and its owner told", "[etcd]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for(cluster.endpoints()));
  std::vector<int64_t> leases;
  auto lease = client.keep_lease(3, [&](int64_t id) { leases.push_back(id); });
  REQUIRE(loop.run_until([&] { return !leases.empty(); }, 5s));
  REQUIRE(answer<void>(loop, [&](auto done) { client.lease_revoke(leases.front(), done); }));
  REQUIRE(loop.run_until([&] { return leases.size() == 2; }, 5s));
  CHECK(leases[1] != leases[0]);
  CHECK(lease->id() == leases[1]);
}

TEST_CASE("a revoked lease takes its key at once and is not granted again", "[etcd]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for(cluster.endpoints()));
  std::vector<int64_t> leases;
  auto lease = client.keep_lease(30, [&](int64_t id) { leases.push_back(id); });
  REQUIRE(loop.run_until([&] { return !leases.empty(); }, 5s));
  write(loop, client, "/t/node", "up", leases.back());
  bool revoked = false;
  lease->revoke([&] { revoked = true; });
  REQUIRE(loop.run_until([&] { return revoked; }, 5s));
  CHECK(read(loop, client, "/t/node").kvs.empty());  // not after the 30 s TTL
  CHECK(lease->id() == 0);
  loop.run_until([] { return false; }, 300ms);
  CHECK(leases.size() == 1);
}

TEST_CASE("a watch delivers a snapshot, then puts and deletes in order", "[etcd]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for(cluster.endpoints()));
  write(loop, client, "/t/w/old", "0");
  write(loop, client, "/t/other", "x");
  Seen seen;
  auto watch = client.watch("/t/w/", 0, seen.callbacks());
  REQUIRE(loop.run_until([&] { return watch->watching(); }, 5s));
  write(loop, client, "/t/w/a", "1");
  write(loop, client, "/t/other", "y");
  REQUIRE(answer<int64_t>(loop, [&](auto done) { client.delete_range("/t/w/old", false, done); }));
  REQUIRE(seen.wait_for(loop, 4));
  CHECK(seen.lines ==
        std::vector<std::string>{"snapshot 1", "has /t/w/old=0", "put /t/w/a=1", "del /t/w/old"});
}

TEST_CASE("a watch reads a prefix larger than a page whole, page by page, then goes on", "[etcd]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdSettings settings = settings_for(cluster.endpoints());
  settings.range_page = 2;
  EtcdClient client(loop, settings);
  for (const char* key : {"/t/p/1", "/t/p/2", "/t/p/3", "/t/p/4", "/t/p/5", "/t/q"})
    write(loop, client, key, "v");
  Seen seen;
  auto watch = client.watch("/t/p/", 0, seen.callbacks());
  REQUIRE(loop.run_until([&] { return watch->watching(); }, 5s));
  write(loop, client, "/t/p/6", "w");
  REQUIRE(seen.wait_for(loop, 7));
  CHECK(seen.lines == std::vector<std::string>{"snapshot 5", "has /t/p/1=v", "has /t/p/2=v", "has /t/p/3=v",
                                               "has /t/p/4=v", "has /t/p/5=v", "put /t/p/6=w"});
}

TEST_CASE("a watch from a compacted revision reads the prefix whole, then goes on", "[etcd]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for(cluster.endpoints()));
  int64_t first = write(loop, client, "/t/c/1", "a");
  write(loop, client, "/t/c/1", "b");
  int64_t last = write(loop, client, "/t/c/2", "c");
  REQUIRE(answer<void>(loop, [&](auto done) { client.compact(last, done); }));
  Seen seen;
  auto watch = client.watch("/t/c/", first + 1, seen.callbacks());
  // etcd may confirm the stream before it cancels it for the compaction.
  REQUIRE(loop.run_until([&] { return !seen.lines.empty() && watch->watching(); }, 5s));
  write(loop, client, "/t/c/3", "d");
  REQUIRE(seen.wait_for(loop, 4));
  CHECK(seen.lines == std::vector<std::string>{"snapshot 2", "has /t/c/1=b", "has /t/c/2=c", "put /t/c/3=d"});
}

TEST_CASE("requests move on from a dead endpoint; a watch resumes on another member without loss", "[etcd]") {
  EtcdCluster cluster(3);
  EventLoop loop;
  EtcdClient watcher(loop, settings_for(cluster.endpoints()));
  EtcdClient writer(loop, settings_for({cluster.endpoint(1), cluster.endpoint(2)}));
  Seen seen;
  auto watch = watcher.watch("/t/r/", 0, seen.callbacks());
  REQUIRE(loop.run_until([&] { return watch->watching(); }, 5s));
  write(loop, writer, "/t/r/1", "a");
  REQUIRE(seen.wait_for(loop, 2));
  cluster.kill(0);
  for (int i = 2; i <= 5; ++i) write(loop, writer, "/t/r/" + std::to_string(i), "x");
  REQUIRE(seen.wait_for(loop, 6));
  CHECK(seen.lines == std::vector<std::string>{"snapshot 0", "put /t/r/1=a", "put /t/r/2=x", "put /t/r/3=x",
                                               "put /t/r/4=x", "put /t/r/5=x"});
  // The watcher's client starts its requests at the dead member and moves on.
  CHECK(read(loop, watcher, "/t/r/", true).kvs.size() == 5);
}

TEST_CASE("an endpoint nobody listens on is skipped", "[etcd]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for({"http://127.0.0.1:1", cluster.endpoint(0)}));
  CHECK(write(loop, client, "/t/f", "v") > 0);
  CHECK(read(loop, client, "/t/f").kvs.at(0).value == "v");
}

TEST_CASE("each endpoint's health: failing since when and why, answering, not asked yet", "[etcd]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for({"http://127.0.0.1:1", cluster.endpoint(0), "http://127.0.0.1:2"}));
  auto before = std::chrono::system_clock::now();
  write(loop, client, "/t/f", "v");
  const auto& health = client.endpoint_health();
  REQUIRE(health.size() == 3);
  CHECK(health[0].url == "http://127.0.0.1:1");
  CHECK_FALSE(health[0].answered);
  REQUIRE(health[0].failing_since);
  CHECK(*health[0].failing_since >= before - 1s);
  CHECK_FALSE(health[0].last_error.empty());
  CHECK(health[1].answered);
  CHECK_FALSE(health[1].failing_since);
  CHECK_FALSE(health[2].answered);
  CHECK_FALSE(health[2].failing_since);
  CHECK(client.current_endpoint() == 1);
}

TEST_CASE("endpoints: https anywhere, plain http only on loopback", "[etcd_json]") {
  CHECK(check_endpoints({"https://10.0.0.1:2379", "http://127.0.0.1:2379", "http://[::1]:2379"}));
  CHECK_FALSE(check_endpoints({}));
  CHECK_FALSE(check_endpoints({"http://10.0.0.1:2379"}));
  CHECK_FALSE(check_endpoints({"https://10.0.0.1"}));
  CHECK_FALSE(check_endpoints({"https://10.0.0.1:2379/v3"}));
  CHECK_FALSE(check_endpoints({"ftp://10.0.0.1:2379"}));
}

TEST_CASE("a watch leaves a member that stops answering without closing the stream", "[etcd]") {
  EtcdCluster cluster(3);
  EventLoop loop;
  EtcdClient watcher(loop, settings_for(cluster.endpoints()));
  EtcdClient writer(loop, settings_for({cluster.endpoint(1), cluster.endpoint(2)}));
  Seen seen;
  auto watch = watcher.watch("/t/p/", 0, seen.callbacks());
  REQUIRE(loop.run_until([&] { return watch->watching(); }, 5s));
  cluster.pause(0);
  write(loop, writer, "/t/p/1", "a");
  write(loop, writer, "/t/p/2", "b");
  CHECK(seen.wait_for(loop, 3));
  cluster.resume(0);
  CHECK(seen.lines == std::vector<std::string>{"snapshot 0", "put /t/p/1=a", "put /t/p/2=b"});
}

TEST_CASE("a watch's second stream delivers at once what a hung member holds back, each change once",
          "[etcd]") {
  EtcdCluster cluster(3);
  EventLoop loop;
  EtcdClient watcher(loop, settings_for(cluster.endpoints()));
  EtcdClient writer(loop, settings_for({cluster.endpoint(1), cluster.endpoint(2)}));
  Seen seen;
  auto watch = watcher.watch("/t/h/", 0, seen.callbacks());
  REQUIRE(loop.run_until([&] { return watch->watching(); }, 5s));
  cluster.pause(0);  // the member in use: the watch's first stream and its probe are there
  write(loop, writer, "/t/h/1", "a");
  auto written = std::chrono::steady_clock::now();
  bool arrived = seen.wait_for(loop, 2);
  auto elapsed = std::chrono::steady_clock::now() - written;
  REQUIRE(arrived);
  CHECK(elapsed < 1s);  // the probe would take 3 s, and a second to give up on the member
  int64_t last = write(loop, writer, "/t/h/2", "b");
  REQUIRE(loop.run_until([&] { return !seen.revisions.empty() && seen.revisions.back() == last; }, 5s));
  cluster.resume(0);  // the first stream's copies of the changes now arrive, and are dropped
  // While the hung member was etcd's leader, a put that timed out and was tried on the next
  // member may be taken twice, the second time once the member is back: each revision counts.
  CHECK(loop.run_until([&] { return seen.revisions.back() == read(loop, writer, "/t/h/", true).revision; },
                       5s));
  loop.run_until([] { return false; }, 500ms);
  CHECK(std::adjacent_find(seen.revisions.begin(), seen.revisions.end(), std::greater_equal<>()) ==
        seen.revisions.end());  // none twice, none out of order
}

TEST_CASE("a watch on a member without a quorum is not reachable, its stream open", "[etcd]") {
  EtcdCluster cluster(3);
  EventLoop loop;
  EtcdClient watcher(loop, settings_for({cluster.endpoint(0)}));
  Seen seen;
  auto watch = watcher.watch("/t/q/", 0, seen.callbacks());
  REQUIRE(loop.run_until([&] { return watch->reachable(); }, 5s));
  cluster.kill(1);
  cluster.kill(2);
  CHECK(loop.run_until([&] { return !watch->reachable(); }, 10s));  // the probe's read went unanswered
}

TEST_CASE("over TLS the client checks etcd against its CA and shows its own certificate", "[etcd]") {
  EtcdCluster cluster(1, EtcdCluster::Transport::tls);
  EventLoop loop;
  EtcdSettings good = settings_for(cluster.endpoints());
  good.ca_file = cluster.ca_file();
  good.cert_file = cluster.cert_file();
  good.key_file = cluster.key_file();
  EtcdClient client(loop, good);
  write(loop, client, "/t/tls", "v");
  CHECK(read(loop, client, "/t/tls").kvs.at(0).value == "v");

  EtcdSettings no_pair = good;
  no_pair.cert_file.clear();
  no_pair.key_file.clear();
  EtcdClient anonymous(loop, no_pair);
  CHECK_FALSE(answer<RangeResult>(loop, [&](auto done) { anonymous.range("/t/tls", false, done); }));

  EtcdSettings wrong_ca = good;
  wrong_ca.ca_file = cluster.other_ca_file();
  EtcdClient misled(loop, wrong_ca);
  CHECK_FALSE(answer<RangeResult>(loop, [&](auto done) { misled.range("/t/tls", false, done); }));
}
