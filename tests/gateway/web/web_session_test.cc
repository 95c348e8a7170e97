#include "gateway/web/web_session.h"

#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

using namespace xcg::gateway::web;

namespace {

void check_refused(WebSession& session) {
  CHECK_FALSE(session.authorized());
  REQUIRE(session.terminal().close());
  CHECK(session.terminal().close()->code == 1008);
  CHECK(session.terminal().close()->reason == kRefusedReason);
  CHECK_FALSE(session.terminal().take_frame());  // no hello
}

// A broker socket whose other end can tell whether anything was asked.
struct QuietBroker {
  QuietBroker() { REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds) == 0); }
  ~QuietBroker() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  bool asked() const {
    char byte;
    return ::recv(fds[1], &byte, 1, MSG_DONTWAIT) >= 0;
  }
  int fds[2] = {-1, -1};
};

}  // namespace

TEST_CASE("a token that is no text frame, empty or too long is refused without the broker", "[web]") {
  QuietBroker quiet;
  xcg::gateway::BrokerClient broker(quiet.fds[0]);
  SECTION("binary") {
    WebSession session(broker, 0);
    CHECK_FALSE(session.authorize("token", false, "", ""));
    check_refused(session);
  }
  SECTION("empty") {
    WebSession session(broker, 0);
    CHECK_FALSE(session.authorize("", true, "", ""));
    check_refused(session);
  }
  SECTION("too long") {
    WebSession session(broker, 0);
    CHECK_FALSE(session.authorize(std::string(kMaxTokenBytes + 1, 'a'), true, "", ""));
    check_refused(session);
  }
  CHECK_FALSE(quiet.asked());
}

TEST_CASE("a broker that does not answer refuses the token; there is one attempt", "[web]") {
  xcg::gateway::BrokerClient broker(-1);
  WebSession session(broker, 0);
  CHECK_FALSE(session.authorize("abc", true, "", ""));
  check_refused(session);
  CHECK_FALSE(session.authorize("abc", true, "", ""));
  session.text("status");  // ignored before a login: nothing is queued
  session.binary("keys", WebSession::Clock::now());
  CHECK_FALSE(session.terminal().take_frame());
}
