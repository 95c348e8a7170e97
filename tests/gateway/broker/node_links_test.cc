// A front's node connections: the route from a directory, a non-blocking connect on the loop,
// and the customer's reason when there is no node or it cannot be reached.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <map>
#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include "gateway/broker/node_links.h"
#include "gateway/broker/registry_directory.h"

using namespace xcg::gateway;
using xcg::EventLoop;
using xcg::UniqueFd;
using namespace std::chrono_literals;

namespace {

struct FakeDirectory final : NodeDirectory {
  std::map<std::string, NodeRoute, std::less<>> routes;
  std::optional<NodeRoute> route(std::string_view domain) const override {
    auto it = routes.find(domain);
    return it == routes.end() ? std::nullopt : std::optional(it->second);
  }
};

// A loopback listener on a free port.
struct Listener {
  UniqueFd fd{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  uint16_t port = 0;
  explicit Listener(int backlog = 8) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), len) == 0);
    REQUIRE(::listen(fd.get(), backlog) == 0);
    REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
  }
};

// A port nobody listens on: bound and closed again.
uint16_t closed_port() { return Listener().port; }

uint16_t local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  return ntohs(a.sin_port);
}

struct Outcome {
  std::optional<ipc::NodeConnectAns> answer;
  UniqueFd fd;
};

Outcome open_and_wait(NodeLinks& links, EventLoop& loop, const std::string& domain) {
  Outcome out;
  links.open(domain, [&out](ipc::NodeConnectAns a, UniqueFd fd, int64_t) {
    out.answer = std::move(a);
    out.fd = std::move(fd);
  });
  REQUIRE(loop.run_until([&] { return out.answer.has_value(); }, 10s));
  return out;
}

}  // namespace

TEST_CASE("a domain no node runs is refused with the customer's reason", "[node_links]") {
  EventLoop loop;
  FakeDirectory nodes;
  NodeLinks links(loop, nodes);
  auto out = open_and_wait(links, loop, "web1");
  CHECK_FALSE(out.answer->ok);
  CHECK(out.answer->text == "web1 is not running on any node");
  CHECK_FALSE(out.fd);
}

TEST_CASE("the node's socket comes connected, with its name and host key fingerprint", "[node_links]") {
  EventLoop loop;
  Listener node;
  FakeDirectory nodes;
  nodes.routes["web1"] = NodeRoute{"node-b", "127.0.0.1", node.port, "SHA256:abc"};
  NodeLinks links(loop, nodes);
  Outcome out;
  links.open("web1", [&](ipc::NodeConnectAns a, UniqueFd fd, int64_t) {
    out.answer = std::move(a);
    out.fd = std::move(fd);
  });
  CHECK_FALSE(out.answer.has_value());  // the connect goes on in the loop
  REQUIRE(loop.run_until([&] { return out.answer.has_value(); }, 10s));
  REQUIRE(out.answer->ok);
  CHECK(out.answer->node == "node-b");
  CHECK(out.answer->host_key_fingerprint == "SHA256:abc");
  REQUIRE(out.fd);
  UniqueFd accepted(::accept4(node.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  REQUIRE(accepted);
  CHECK(::send(out.fd.get(), "x", 1, MSG_NOSIGNAL) == 1);
  char c = 0;
  CHECK(::recv(accepted.get(), &c, 1, 0) == 1);
  CHECK(c == 'x');
  CHECK(local_port(out.fd.get()) != 0);
}

TEST_CASE("a domain that migrated away is opened once the directory names another node", "[node_links]") {
  EventLoop loop;
  Listener node_b;
  FakeDirectory nodes;
  nodes.routes["web1"] = NodeRoute{"node-a", "127.0.0.1", closed_port(), "SHA256:a"};
  NodeLinks links(loop, nodes);
  Outcome out;
  links.open_elsewhere("web1", "node-a", 0, [&](ipc::NodeConnectAns a, UniqueFd fd, int64_t) {
    out.answer = std::move(a);
    out.fd = std::move(fd);
  });
  CHECK_FALSE(loop.run_until([&] { return out.answer.has_value(); }, 300ms));  // still node-a's
  nodes.routes["web1"] = NodeRoute{"node-b", "127.0.0.1", node_b.port, "SHA256:b"};
  REQUIRE(loop.run_until([&] { return out.answer.has_value(); }, 10s));
  REQUIRE(out.answer->ok);
  CHECK(out.answer->node == "node-b");
  CHECK(out.answer->host_key_fingerprint == "SHA256:b");
  CHECK(out.fd);
}

TEST_CASE("a domain that left a node and came back to it is opened there again", "[node_links]") {
  EventLoop loop;
  Listener node_a;
  FakeDirectory nodes;
  nodes.routes["web1"] = NodeRoute{"node-a", "127.0.0.1", node_a.port, "SHA256:a", 7};
  NodeLinks links(loop, nodes);
  Outcome out;
  int64_t revision = 0;
  links.open_elsewhere("web1", "node-a", 7, [&](ipc::NodeConnectAns a, UniqueFd fd, int64_t r) {
    out.answer = std::move(a);
    out.fd = std::move(fd);
    revision = r;
  });
  // The record that routed the session there: the domain has not come back yet.
  CHECK_FALSE(loop.run_until([&] { return out.answer.has_value(); }, 300ms));
  nodes.routes["web1"].revision = 9;  // restored on node-a, which claimed it again
  REQUIRE(loop.run_until([&] { return out.answer.has_value(); }, 10s));
  REQUIRE(out.answer->ok);
  CHECK(out.answer->node == "node-a");
  CHECK(revision == 9);
  CHECK(out.fd);
}

TEST_CASE("a domain that migrated away and appears nowhere else is given up with a line", "[node_links]") {
  EventLoop loop;
  FakeDirectory nodes;
  NodeLinks links(loop, nodes, NodeLinks::kConnectTimeout, 1s);
  Outcome out;
  auto started = std::chrono::steady_clock::now();
  links.open_elsewhere("web1", "node-a", 0,
                       [&](ipc::NodeConnectAns a, UniqueFd, int64_t) { out.answer = std::move(a); });
  REQUIRE(loop.run_until([&] { return out.answer.has_value(); }, 10s));
  CHECK(std::chrono::steady_clock::now() - started >= 1s);
  CHECK_FALSE(out.answer->ok);
  CHECK(out.answer->text == "web1 left node-a and did not appear on any node within 1 s");
}

TEST_CASE("a node that refuses the connection is unreachable", "[node_links]") {
  EventLoop loop;
  FakeDirectory nodes;
  nodes.routes["web1"] = NodeRoute{"node-b", "127.0.0.1", closed_port(), "SHA256:abc"};
  NodeLinks links(loop, nodes);
  auto out = open_and_wait(links, loop, "web1");
  CHECK_FALSE(out.answer->ok);
  CHECK(out.answer->text == "node-b unreachable");
  CHECK_FALSE(out.fd);
}

TEST_CASE("a node address that is not numeric is not resolved: unreachable", "[node_links]") {
  EventLoop loop;
  FakeDirectory nodes;
  nodes.routes["web1"] = NodeRoute{"node-b", "localhost", 22, "SHA256:abc"};
  NodeLinks links(loop, nodes);
  auto out = open_and_wait(links, loop, "web1");
  CHECK(out.answer->text == "node-b unreachable");
}

TEST_CASE("a node that never answers is given up after the timeout", "[node_links]") {
  EventLoop loop;
  // A full accept queue: the kernel drops further SYNs, so a connect hangs.
  Listener node(0);
  std::vector<UniqueFd> fillers;
  for (int i = 0; i < 4; ++i) {
    fillers.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(node.port);
    (void)::connect(fillers.back().get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  FakeDirectory nodes;
  nodes.routes["web1"] = NodeRoute{"node-b", "127.0.0.1", node.port, "SHA256:abc"};
  NodeLinks links(loop, nodes, 300ms);
  auto started = std::chrono::steady_clock::now();
  auto out = open_and_wait(links, loop, "web1");
  CHECK(out.answer->text == "node-b unreachable");
  CHECK(std::chrono::steady_clock::now() - started >= 300ms);
}

TEST_CASE("a node's advertised address splits into host and port", "[node_links]") {
  using Split = std::optional<std::pair<std::string, uint16_t>>;
  CHECK(split_host_port("192.0.2.1:22") == Split({"192.0.2.1", 22}));
  CHECK(split_host_port("[2001:db8::1]:2222") == Split({"2001:db8::1", 2222}));
  CHECK(split_host_port("192.0.2.1") == std::nullopt);
  CHECK(split_host_port("192.0.2.1:0") == std::nullopt);
  CHECK(split_host_port("192.0.2.1:65536") == std::nullopt);
  CHECK(split_host_port("192.0.2.1:22x") == std::nullopt);
  CHECK(split_host_port(":22") == std::nullopt);
  CHECK(split_host_port("[]:22") == std::nullopt);
}
