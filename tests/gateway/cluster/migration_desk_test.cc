// Two nodes' migration desks on one real etcd: the steps of migrations/<domain> between them.
#include "gateway/cluster/migration_desk.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <set>
#include <string>

#include "tests/gateway/cluster/etcd_fixture.h"
#include "tests/gateway/cluster/etcd_wait.h"

using namespace xcg;
using namespace xcg::testing;
using namespace std::chrono_literals;

namespace {

EtcdSettings settings_for(const EtcdCluster& cluster) {
  EtcdSettings s;
  s.endpoints = cluster.endpoints();
  return s;
}

// A node's domains as its desk sees them: which it serves, which run here.
struct Node {
  std::set<std::string> served, running;
  std::optional<MigrationDesk> desk;

  Node(EventLoop& loop, EtcdClient& client, const std::string& name, std::set<std::string> domains) {
    served = std::move(domains);
    MigrationDesk::Hooks hooks{[this, name](const std::string& d) -> std::optional<std::string> {
                                 if (!served.contains(d)) return name + " does not serve " + d;
                                 return std::nullopt;
                               },
                               [this](const std::string& d) { running.insert(d); },
                               [this](const std::string& d, const std::string&) -> Result<void> {
                                 running.erase(d);
                                 return {};
                               }};
    desk.emplace(loop, client, "/xcg/", name, std::move(hooks));
  }
};

std::optional<Result<std::string>> migrate(EventLoop& loop, Node& from, const std::string& domain,
                                           const std::string& to) {
  std::optional<Result<std::string>> outcome;
  from.desk->migrate(domain, to, [&](Result<std::string> r) { outcome.emplace(std::move(r)); });
  if (!loop.run_until([&] { return outcome.has_value(); }, 10s)) return std::nullopt;
  return outcome;
}

}  // namespace

TEST_CASE("a migration moves the domain, and the source refuses actions on it since", "[etcd][migration]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for(cluster));
  Node a(loop, client, "node-a", {"web1"}), b(loop, client, "node-b", {"web1"});
  a.running.insert("web1");
  auto outcome = migrate(loop, a, "web1", "node-b");
  REQUIRE(outcome);
  REQUIRE(*outcome);
  CHECK(**outcome == "web1 moved to node-b");
  CHECK_FALSE(a.running.contains("web1"));
  CHECK(a.desk->busy("web1") == "web1 moved to node-b");
  REQUIRE(loop.run_until([&] { return b.running.contains("web1"); }, 5s));
  REQUIRE(loop.run_until([&] { return read(loop, client, "/xcg/migrations/web1").kvs.empty(); }, 5s));
  CHECK_FALSE(b.desk->busy("web1"));
}

TEST_CASE("a destination that does not serve the domain refuses; nothing moves", "[etcd][migration]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for(cluster));
  Node a(loop, client, "node-a", {"web9"}), b(loop, client, "node-b", {"web1"});
  a.running.insert("web9");
  auto outcome = migrate(loop, a, "web9", "node-b");
  REQUIRE(outcome);
  REQUIRE_FALSE(*outcome);
  CHECK(outcome->error().message == "node-b does not serve web9");
  CHECK(a.running.contains("web9"));
  CHECK_FALSE(a.desk->busy("web9"));
  CHECK(loop.run_until([&] { return read(loop, client, "/xcg/migrations/web9").kvs.empty(); }, 5s));
}

TEST_CASE("a destination that does not answer is given up; the domain stays", "[etcd][migration]") {
  EtcdCluster cluster(1);
  EventLoop loop;
  EtcdClient client(loop, settings_for(cluster));
  Node a(loop, client, "node-a", {"web1"});
  a.running.insert("web1");
  std::optional<Result<std::string>> outcome;
  a.desk->migrate("web1", "node-z", [&](Result<std::string> r) { outcome.emplace(std::move(r)); });
  CHECK(a.desk->busy("web1") == "web1 is migrating to node-z");
  REQUIRE(loop.run_until([&] { return outcome.has_value(); }, 10s));
  REQUIRE_FALSE(*outcome);
  CHECK(outcome->error().message == "node-z did not answer within 3 s; web1 stays here");
  CHECK(a.running.contains("web1"));
  CHECK_FALSE(a.desk->busy("web1"));
}
