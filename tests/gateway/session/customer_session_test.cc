// The session core against a fake terminal, with the test playing the broker: its answers are
// queued on the IPC socket before the core asks, as the calls are blocking.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include "gateway/ipc/ipc.h"
#include "gateway/session/broker_client.h"
#include "gateway/session/customer_session.h"
#include "gateway/session/terminal.h"

using namespace xcg;
using namespace xcg::gateway;
using Clock = std::chrono::steady_clock;

namespace {

struct FakeTerminal : Terminal {
  std::string out, err;
  size_t room = SIZE_MAX;  // bytes the customer's end takes before it is full
  bool gone = false;
  std::optional<int> exit_status;
  std::string reason;

  Result<size_t> write(Stream stream, std::string_view bytes) override {
    if (gone) return fail(Errc::peer_closed, "gone");
    size_t n = std::min(room, bytes.size());
    (stream == Stream::err ? err : out).append(bytes.substr(0, n));
    room -= n;
    return n;
  }
  void end(int status, std::string_view why) override {
    REQUIRE_FALSE(exit_status);  // ended once
    exit_status = status;
    reason = why;
  }
};

std::pair<UniqueFd, UniqueFd> socket_pair(int type) {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, type, 0, fds) == 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// The broker's end of the IPC socket, and a console hub's end of an attached console.
struct Fixture {
  std::pair<UniqueFd, UniqueFd> ipc = socket_pair(SOCK_SEQPACKET);
  std::pair<UniqueFd, UniqueFd> hub = socket_pair(SOCK_STREAM);
  BrokerClient broker{ipc.first.get()};
  FakeTerminal terminal;
  Customer customer{"web1", false, {config::Action::console, config::Action::start}, false};

  void answer(const ipc::Message& m, int fd = -1) { REQUIRE(ipc::send(ipc.second.get(), m, fd)); }
  void answer_status() {
    answer(ipc::WhoAns{});
    answer(ipc::StatusAns{true, "web1: running"});
  }
  void answer_attach() {
    answer(ipc::AttachAns{true, ""}, hub.second.get());
    hub.second.reset();  // the core's copy is the only one left
  }
  // True once the core closed its end of the console (the hub records a detach).
  bool hub_saw_detach() {
    char byte;
    return ::recv(hub.first.get(), &byte, 1, MSG_DONTWAIT) == 0;
  }
  // What the guest received from the customer, without waiting.
  std::string guest_got() {
    char buf[256];
    ssize_t n = ::recv(hub.first.get(), buf, sizeof buf, MSG_DONTWAIT);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }
};

size_t count(const std::string& text, std::string_view what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("the shell shows the menu with the broker's status line", "[customer_session]") {
  Fixture f;
  CustomerSession s(f.terminal, f.broker, f.customer, 0);
  f.answer_status();
  REQUIRE(s.start_shell());
  REQUIRE_FALSE(s.start_exec("status"));  // one start per session
  s.step(Clock::now());
  CHECK(count(f.terminal.out, "web1: running") == 1);
  CHECK(f.terminal.out.ends_with("Choice: "));
  CHECK_FALSE(s.over());
}

TEST_CASE("output waits while the customer's end is full", "[customer_session]") {
  Fixture f;
  CustomerSession s(f.terminal, f.broker, f.customer, 0);
  f.answer_status();
  f.terminal.room = 5;
  REQUIRE(s.start_shell());
  s.step(Clock::now());
  CHECK(f.terminal.out.size() == 5);
  f.terminal.room = SIZE_MAX;
  s.step(Clock::now());
  CHECK(f.terminal.out.ends_with("Choice: "));
}

TEST_CASE("Ctrl-] in the console detaches back to the menu", "[customer_session]") {
  Fixture f;
  f.customer.console_on_login = true;
  CustomerSession s(f.terminal, f.broker, f.customer, 0);
  f.answer_attach();
  CHECK(s.console_attachments() == 0);
  REQUIRE(s.start_shell());
  s.step(Clock::now());
  REQUIRE(s.console_to_watch());
  CHECK(s.console_attachments() == 1);  // tells this console from a later one with the same number

  REQUIRE(::write(f.hub.first.get(), "login: ", 7) == 7);
  s.console_readable();
  f.answer_status();
  s.input("root\x1dignored", Clock::now());
  s.step(Clock::now());
  CHECK(f.guest_got() == "root");
  CHECK(f.hub_saw_detach());
  CHECK(f.terminal.out.find("login: ") != std::string::npos);
  CHECK(f.terminal.out.find("[detached]") != std::string::npos);
  CHECK(f.terminal.out.ends_with("Choice: "));
  CHECK_FALSE(s.console_to_watch());
  CHECK_FALSE(s.over());
}

TEST_CASE("a read-only viewer's keystrokes do not reach the guest", "[customer_session]") {
  Fixture f;
  f.customer.readonly = true;
  CustomerSession s(f.terminal, f.broker, f.customer, 0);
  f.answer_attach();
  REQUIRE(s.start_exec("console"));
  s.step(Clock::now());
  CHECK(f.terminal.out.find("view only") != std::string::npos);

  s.input("reboot\r", Clock::now());
  s.step(Clock::now());
  CHECK(f.guest_got().empty());
  CHECK_FALSE(f.terminal.exit_status);

  s.input("\x1d", Clock::now());  // still detaches, which ends an exec'd console
  s.step(Clock::now());
  CHECK(f.terminal.exit_status == 0);
  CHECK(s.over());
}

TEST_CASE("an unknown exec command ends with status 2 and the reason on stderr", "[customer_session]") {
  Fixture f;
  CustomerSession s(f.terminal, f.broker, f.customer, 0);
  REQUIRE(s.start_exec("rm -rf /"));
  s.step(Clock::now());
  CHECK(f.terminal.exit_status == 2);
  CHECK(f.terminal.err.find("unknown command") != std::string::npos);
  CHECK(f.terminal.out.empty());
  CHECK(s.over());
}

TEST_CASE("an exec command ends with the broker's answer", "[customer_session]") {
  Fixture f;
  CustomerSession s(f.terminal, f.broker, f.customer, 0);
  SECTION("success: stdout and 0") {
    f.answer(ipc::ActionAns{true, "web1 is starting"});
    REQUIRE(s.start_exec("start"));
    s.step(Clock::now());
    CHECK(f.terminal.out == "web1 is starting\n");
    CHECK(f.terminal.exit_status == 0);
  }
  SECTION("refusal: stderr and 1") {
    f.answer(ipc::ActionAns{false, "web1 is running"});
    REQUIRE(s.start_exec("start"));
    s.step(Clock::now());
    CHECK(f.terminal.err == "xcg: web1 is running\n");
    CHECK(f.terminal.exit_status == 1);
  }
}

TEST_CASE("silence past the idle timeout ends the session", "[customer_session]") {
  Fixture f;
  CustomerSession s(f.terminal, f.broker, f.customer, 5);
  f.answer_status();
  REQUIRE(s.start_shell());
  auto t0 = Clock::now();
  s.step(t0);
  s.input("x", t0 + std::chrono::seconds(4));  // an unknown key: the menu rings the bell
  s.step(t0 + std::chrono::seconds(8));
  CHECK_FALSE(f.terminal.exit_status);  // 4 s since the last input
  s.step(t0 + std::chrono::seconds(10));
  CHECK(f.terminal.exit_status == 0);
  CHECK(f.terminal.reason == "idle for 5 s; closing the session");
  CHECK(f.terminal.out.ends_with("[xcg: idle for 5 s; closing the session]\r\n"));
}

TEST_CASE("a revocation ends the session with its reason and status 1", "[customer_session]") {
  Fixture f;
  f.customer.console_on_login = true;
  CustomerSession s(f.terminal, f.broker, f.customer, 0);
  f.answer_attach();
  REQUIRE(s.start_shell());
  s.step(Clock::now());
  f.answer(ipc::Revoke{"access to web1 was revoked"});
  f.broker.take_unsolicited();
  s.step(Clock::now());
  CHECK(f.terminal.exit_status == 1);
  CHECK(f.terminal.reason == "access to web1 was revoked");
  CHECK(f.terminal.out.ends_with("[xcg: access to web1 was revoked]\r\n"));
  CHECK(f.hub_saw_detach());
}

TEST_CASE("input ending in the menu ends the session; a hang-up ends it silently", "[customer_session]") {
  Fixture f;
  CustomerSession s(f.terminal, f.broker, f.customer, 0);
  f.answer_status();
  REQUIRE(s.start_shell());
  s.step(Clock::now());
  SECTION("end of input") {
    s.input_ended();
    s.step(Clock::now());
    CHECK(f.terminal.exit_status == 0);
  }
  SECTION("hang-up") {
    s.hung_up();
    s.step(Clock::now());
    CHECK_FALSE(f.terminal.exit_status);
  }
  CHECK(s.over());
}

TEST_CASE("the console is not read while the customer falls behind", "[customer_session]") {
  Fixture f;
  f.customer.console_on_login = true;
  CustomerSession s(f.terminal, f.broker, f.customer, 0);
  f.answer_attach();
  REQUIRE(s.start_shell());
  s.step(Clock::now());
  f.terminal.room = 0;
  std::string burst(64 * 1024, 'a');
  for (int i = 0; i < 5 && s.console_to_watch(); ++i) {
    REQUIRE(::write(f.hub.first.get(), burst.data(), burst.size()) == static_cast<ssize_t>(burst.size()));
    s.console_readable();
    s.step(Clock::now());
  }
  CHECK_FALSE(s.console_to_watch());
  f.terminal.room = SIZE_MAX;
  s.step(Clock::now());
  CHECK(s.console_to_watch());
}
