// The registry, written by nodes and read by a front, against a real etcd.
#include "gateway/cluster/registry.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "gateway/cluster/registry_view.h"
#include "tests/gateway/cluster/etcd_fixture.h"
#include "tests/gateway/cluster/etcd_wait.h"

using namespace xcg;
using namespace xcg::testing;
using namespace std::chrono_literals;

namespace {

constexpr const char* kPrefix = "/xcg/";

EtcdSettings settings_for(const EtcdCluster& cluster) {
  EtcdSettings s;
  s.endpoints = cluster.endpoints();
  return s;
}

NodeInfo info(const std::string& address) { return NodeInfo{address, "SHA256:" + address, "0.1.0"}; }

// Whether `view` routes `domain` to `node` (nullopt: to no node) within a few seconds.
bool routes(EventLoop& loop, const RegistryView& view, const std::string& domain,
            std::optional<std::string> node) {
  return loop.run_until(
      [&] {
        auto route = view.lookup(domain);
        return view.ready() && (route ? std::optional<std::string>(route->node) : std::nullopt) == node;
      },
      5s);
}

}  // namespace

TEST_CASE("a node's domains are routed to its address until it releases them", "[etcd]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for(cluster));
  RegistryView view(client, kPrefix);
  RegistryWriter node(client, kPrefix, "dom0-a", info("10.0.0.1:22"), 5);
  REQUIRE(loop.run_until([&] { return node.registered(); }, 5s));
  node.claim("web1");
  REQUIRE(routes(loop, view, "web1", "dom0-a"));
  auto route = view.lookup("web1");
  CHECK(route->address == "10.0.0.1:22");
  CHECK(route->host_key_fingerprint == "SHA256:10.0.0.1:22");
  REQUIRE(loop.run_until([&] { return node.holds("web1"); }, 5s));
  CHECK_FALSE(view.lookup("web2"));
  node.release("web1");
  CHECK(routes(loop, view, "web1", std::nullopt));
  CHECK(read(loop, client, "/xcg/domains/web1").kvs.empty());
}

TEST_CASE("a node that lost a domain cannot write over its new owner", "[etcd]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for(cluster));
  RegistryView view(client, kPrefix);
  RegistryWriter a(client, kPrefix, "dom0-a", info("10.0.0.1:22"), 5);
  RegistryWriter b(client, kPrefix, "dom0-b", info("10.0.0.2:22"), 5);
  a.claim("web1");
  REQUIRE(routes(loop, view, "web1", "dom0-a"));
  b.claim("web1");  // migrated to b
  REQUIRE(routes(loop, view, "web1", "dom0-b"));
  REQUIRE(loop.run_until([&] { return b.holds("web1"); }, 5s));
  a.recheck();  // a, back from a partition, writes its stale record again
  REQUIRE(loop.run_until([&] { return !a.holds("web1"); }, 5s));
  a.release("web1");
  loop.run_until([] { return false; }, 200ms);  // room for a stray write to land
  CHECK(read(loop, client, "/xcg/domains/web1").kvs.at(0).value == "dom0-b");
  CHECK(view.lookup("web1")->node == "dom0-b");
}

TEST_CASE("a domain that left a node and is claimed there again gets a new record revision", "[etcd]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for(cluster));
  RegistryView view(client, kPrefix);
  RegistryWriter node(client, kPrefix, "dom0-a", info("10.0.0.1:22"), 5);
  REQUIRE(loop.run_until([&] { return node.registered(); }, 5s));  // no rewrite for a new lease
  node.claim("web1");
  REQUIRE(routes(loop, view, "web1", "dom0-a"));
  REQUIRE(loop.run_until([&] { return node.holds("web1"); }, 5s));
  int64_t first = view.lookup("web1")->revision;
  CHECK(first == read(loop, client, "/xcg/domains/web1").kvs.at(0).mod_revision);
  node.claim("web1");                           // running still: the record stays as it is
  loop.run_until([] { return false; }, 200ms);  // room for a stray write to land
  CHECK(read(loop, client, "/xcg/domains/web1").kvs.at(0).mod_revision == first);

  node.let_go("web1");  // xl save took it off this host
  CHECK_FALSE(node.holds("web1"));
  CHECK(view.lookup("web1")->revision == first);  // left as it is: the menu is still here
  node.claim("web1");                             // xl restore, on the same node
  REQUIRE(loop.run_until([&] { return view.lookup("web1") && view.lookup("web1")->revision > first; }, 5s));
  CHECK(view.lookup("web1")->node == "dom0-a");
  CHECK(loop.run_until(
      [&] { return node.holds("web1") && node.held().at("web1") == view.lookup("web1")->revision; }, 5s));
}

TEST_CASE("a node that stops keeping its lease disappears; its domains route nowhere", "[etcd]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for(cluster));
  RegistryView view(client, kPrefix);
  auto node = std::make_unique<RegistryWriter>(client, kPrefix, "dom0-a", info("10.0.0.1:22"), 1);
  node->claim("web1");
  REQUIRE(routes(loop, view, "web1", "dom0-a"));
  node.reset();
  CHECK(loop.run_until([&] { return !view.lookup("web1"); }, 5s));
  CHECK(read(loop, client, "/xcg/domains/web1").kvs.size() == 1);  // the record stays; its node is gone
}

TEST_CASE("a node whose lease was lost registers again under the new one", "[etcd]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for(cluster));
  RegistryView view(client, kPrefix);
  RegistryWriter node(client, kPrefix, "dom0-a", info("10.0.0.1:22"), 3);
  node.claim("web1");
  REQUIRE(routes(loop, view, "web1", "dom0-a"));
  int64_t first = node.lease();
  REQUIRE(answer<void>(loop, [&](auto done) { client.lease_revoke(first, done); }));
  REQUIRE(routes(loop, view, "web1", std::nullopt));
  CHECK(routes(loop, view, "web1", "dom0-a"));
  CHECK(node.lease() != first);
  CHECK(node.holds("web1"));
}

// etcd 3.4 revokes every lease when a leader that was hung resumes: a node must not wait for
// its next keepalive (a third of its TTL) to notice.
TEST_CASE("a node whose lease etcd revoked registers again at once, not at its next keepalive", "[etcd]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for(cluster));
  RegistryWriter node(client, kPrefix, "dom0-a", info("10.0.0.1:22"), 30);
  node.claim("web1");
  REQUIRE(loop.run_until([&] { return node.registered() && node.holds("web1"); }, 5s));
  int64_t first = node.lease();
  REQUIRE(answer<void>(loop, [&](auto done) { client.lease_revoke(first, done); }));
  auto revoked = std::chrono::steady_clock::now();
  bool back = loop.run_until(
      [&] {
        auto kvs = read(loop, client, "/xcg/nodes/dom0-a").kvs;
        return !kvs.empty() && kvs.front().lease != first;
      },
      5s);
  auto elapsed = std::chrono::steady_clock::now() - revoked;
  REQUIRE(back);
  CHECK(elapsed < 2s);  // its next keepalive is 10 s away
  CHECK(node.lease() != first);
  CHECK(read(loop, client, "/xcg/domains/web1").kvs.at(0).value == "dom0-a");
  CHECK(loop.run_until([&] { return node.registered(); }, 5s));
}

TEST_CASE("a domain that does not run is offered only where no node is recorded", "[etcd]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for(cluster));
  RegistryView view(client, kPrefix);
  RegistryWriter a(client, kPrefix, "dom0-a", info("10.0.0.1:22"), 5);
  RegistryWriter b(client, kPrefix, "dom0-b", info("10.0.0.2:22"), 5);
  a.offer("web1");
  REQUIRE(routes(loop, view, "web1", "dom0-a"));
  REQUIRE(loop.run_until([&] { return a.holds("web1"); }, 5s));
  b.offer("web1");
  b.offer("web2");
  REQUIRE(routes(loop, view, "web2", "dom0-b"));
  loop.run_until([] { return false; }, 200ms);  // room for a stray write to land
  CHECK_FALSE(b.holds("web1"));
  CHECK(read(loop, client, "/xcg/domains/web1").kvs.at(0).value == "dom0-a");
  CHECK(view.lookup("web1")->node == "dom0-a");
}

TEST_CASE("a domain released while its claim is in flight is not left recorded", "[etcd]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for(cluster));
  RegistryWriter node(client, kPrefix, "dom0-a", info("10.0.0.1:22"), 5);
  REQUIRE(loop.run_until([&] { return node.registered(); }, 5s));
  int64_t before = read(loop, client, "/xcg/domains/web1").revision;
  node.claim("web1");
  node.release("web1");  // a reload removed it before etcd answered
  // The claim's put lands, then its removal.
  CHECK(loop.run_until(
      [&] {
        auto now = read(loop, client, "/xcg/domains/web1");
        return now.revision >= before + 2 && now.kvs.empty();
      },
      5s));
  CHECK_FALSE(node.holds("web1"));
}

// Each start's read and the other node's offer go to etcd at once: the offer lands between the
// start's read and its write for many of them, and each such start's write then fails.
TEST_CASE("a node that starts a domain keeps its record against another node's offer", "[etcd]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for(cluster));
  EtcdClient other(loop, settings_for(cluster));
  RegistryWriter a(client, kPrefix, "dom0-a", info("10.0.0.1:22"), 5);
  RegistryWriter b(other, kPrefix, "dom0-b", info("10.0.0.2:22"), 5);
  REQUIRE(loop.run_until([&] { return a.registered() && b.registered(); }, 5s));
  constexpr int kDomains = 64;
  std::vector<std::string> domains;
  domains.reserve(kDomains);
  for (int i = 0; i < kDomains; ++i) domains.push_back("web" + std::to_string(i));
  for (const auto& domain : domains) {
    a.claim(domain);  // started on a
    b.offer(domain);  // in b's YAML, not running there
  }
  CHECK(loop.run_until(
      [&] { return std::all_of(domains.begin(), domains.end(), [&](auto& d) { return a.holds(d); }); }, 5s));
  std::vector<std::string> lost;  // recorded for b, which does not run them
  for (const auto& domain : domains)
    if (read(loop, client, "/xcg/domains/" + domain).kvs.at(0).value != "dom0-a") lost.push_back(domain);
  CHECK(lost.empty());
}
