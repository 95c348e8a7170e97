// A front's relay when there is nothing to relay to: the customer reads why, with the exit status
// 1, whether the broker found no node or the node did not answer. The test plays the broker.
#include <sys/socket.h>

#include <chrono>
#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include "gateway/ipc/ipc.h"
#include "gateway/session/node_relay.h"

using namespace xcg;
using namespace xcg::gateway;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct FakeTerminal : Terminal {
  std::string out, err;
  std::optional<int> exit_status;
  Result<size_t> write(Stream stream, std::string_view bytes) override {
    (stream == Stream::err ? err : out).append(bytes);
    return bytes.size();
  }
  void end(int status, std::string_view) override {
    REQUIRE_FALSE(exit_status);  // ended once
    exit_status = status;
  }
};

std::pair<UniqueFd, UniqueFd> socket_pair(int type) {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) == 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

SshKey new_key() {
  ssh_key raw = nullptr;
  REQUIRE(ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) == SSH_OK);
  return SshKey(raw);
}

struct Fixture {
  std::pair<UniqueFd, UniqueFd> ipc = socket_pair(SOCK_SEQPACKET);
  BrokerClient broker{ipc.first.get()};
  FakeTerminal terminal;
  SshEvent event{ssh_event_new()};
  SshKey key = new_key();
  NodeRelay relay{terminal, broker, Customer{"web1", false, {}, false, "SHA256:c"},
                  NodeRelay::Setup{key.get(), event.get(), 1s}};

  void answer(const ipc::Message& m, int fd = -1) { REQUIRE(ipc::send(ipc.second.get(), m, fd)); }
  // The request the relay sent, if it was a node_connect_req.
  bool asked_for_node() {
    auto r = ipc::receive(ipc.second.get());
    return r && std::holds_alternative<ipc::NodeConnectReq>(r->message);
  }
};

}  // namespace

TEST_CASE("a domain no node runs: the customer reads why and the session ends with 1", "[node_relay]") {
  Fixture f;
  f.answer(ipc::NodeConnectAns{false, "web1 is not running on any node", "", ""});
  REQUIRE(f.relay.start_exec("status"));
  CHECK_FALSE(f.relay.start_shell());  // one start per session
  f.relay.step(Clock::now());
  CHECK(f.asked_for_node());
  CHECK(f.terminal.err == "xcg: web1 is not running on any node\r\n");
  CHECK(f.terminal.exit_status == 1);
  CHECK(f.relay.over());
}

TEST_CASE("a node that does not answer in time: the customer reads which one", "[node_relay]") {
  Fixture f;
  auto node = socket_pair(SOCK_STREAM);  // a peer that never says a word
  f.answer(ipc::NodeConnectAns{true, "", "node-b", "SHA256:n"}, node.first.get());
  node.first.reset();
  REQUIRE(f.relay.start_shell());
  auto started = Clock::now();
  f.relay.step(started);
  CHECK(Clock::now() - started >= 900ms);  // its deadline, in whole milliseconds
  CHECK(f.terminal.err == "xcg: node-b unavailable\r\n");
  CHECK(f.terminal.exit_status == 1);
}

TEST_CASE("nothing is asked of the broker before the customer asks for a shell or command", "[node_relay]") {
  Fixture f;
  f.relay.pty(PtySize{"xterm", 80, 24});
  f.relay.step(Clock::now());
  CHECK_FALSE(f.relay.started());
  CHECK_FALSE(f.terminal.exit_status);
  char byte;
  CHECK(::recv(f.ipc.second.get(), &byte, 1, MSG_DONTWAIT) < 0);
}
