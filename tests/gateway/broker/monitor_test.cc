// The monitor against a fake handler: every message type in every phase reaches its handler,
// gets the revoked answer, or ends the session, and the budget and descriptor checks hold.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "gateway/broker/monitor.h"

using namespace xcg;
using namespace xcg::gateway;
using ipc::Type;

namespace {

// What happened to one message.
struct FakeHandler final : RequestHandler {
  std::vector<Type> handled;
  std::vector<ipc::Message> replies;
  std::vector<std::string> cut_offs;

  void on(SessionRecord&, const ipc::LogRecord&) override { handled.push_back(Type::log); }
  void on(SessionRecord&, const ipc::AuthorizeReq&) override { handled.push_back(Type::authorize_req); }
  void on(SessionRecord&, const ipc::StatusReq&) override { handled.push_back(Type::status_req); }
  void on(SessionRecord&, const ipc::ActionReq&) override { handled.push_back(Type::action_req); }
  void on(SessionRecord&, const ipc::AttachReq&) override { handled.push_back(Type::attach_req); }
  void on(SessionRecord&, const ipc::LogReq&) override { handled.push_back(Type::log_req); }
  void on(SessionRecord&, const ipc::WhoReq&) override { handled.push_back(Type::who_req); }
  void on(SessionRecord&, const ipc::SysrqReq&) override { handled.push_back(Type::sysrq_req); }
  void on(SessionRecord&, const ipc::WebAuthorizeReq&) override {
    handled.push_back(Type::web_authorize_req);
  }
  void on(SessionRecord&, const ipc::WeblinkReq&) override { handled.push_back(Type::weblink_req); }
  void on(SessionRecord&, const ipc::NodeConnectReq&) override { handled.push_back(Type::node_connect_req); }
  void on(SessionRecord&, const ipc::MetricsReq&) override { handled.push_back(Type::metrics_req); }
  void reply(SessionRecord&, const ipc::Message& m) override { replies.push_back(m); }
  void cut_off(SessionRecord&, std::string_view why) override { cut_offs.emplace_back(why); }
};

enum class Outcome { handled, refused, cut_off };

// The rules as the docs state them, written out by hand: each kind of session logs in its own
// way, and only before it has; a metrics session asks for the metrics (and logs), and nothing else.
Outcome expected(Type t, SessionPhase p, SessionKind kind, bool front) {
  bool web = kind == SessionKind::web;
  if (t == Type::node_connect_req && !front) return Outcome::cut_off;
  if (kind == SessionKind::metrics && t != Type::log && t != Type::metrics_req) return Outcome::cut_off;
  switch (t) {
    case Type::log: return Outcome::handled;
    case Type::authorize_req: return p == SessionPhase::preauth && !web ? Outcome::handled : Outcome::cut_off;
    case Type::web_authorize_req:
      return p == SessionPhase::preauth && web ? Outcome::handled : Outcome::cut_off;
    case Type::metrics_req:
      return p == SessionPhase::preauth && kind == SessionKind::metrics ? Outcome::handled : Outcome::cut_off;
    case Type::status_req:
    case Type::action_req:
    case Type::attach_req:
    case Type::log_req:
    case Type::who_req:
    case Type::sysrq_req:
    case Type::weblink_req:
    case Type::node_connect_req:
      return p == SessionPhase::preauth      ? Outcome::cut_off
             : p == SessionPhase::authorized ? Outcome::handled
                                             : Outcome::refused;
    default: return Outcome::cut_off;
  }
}

SessionRecord session_in(SessionPhase p, SessionKind kind = SessionKind::ssh, bool front = false) {
  SessionRecord s;
  s.kind = kind;
  s.front = front;
  s.authorized = p != SessionPhase::preauth;
  s.revoked = p == SessionPhase::revoked;
  return s;
}

std::vector<ipc::Message> every_message() {
  return []<size_t... I>(std::index_sequence<I...>) {
    return std::vector<ipc::Message>{ipc::Message(std::in_place_index<I>)...};
  }
  (std::make_index_sequence<std::variant_size_v<ipc::Message>>{});
}

Outcome run(SessionPhase phase, const ipc::Message& m, FakeHandler& h, SessionKind kind = SessionKind::ssh,
            bool front = false) {
  SessionRecord s = session_in(phase, kind, front);
  monitor(s, ipc::Received{m, {}}, h, TokenBucket::Clock::now());
  int outcomes = !h.handled.empty() + !h.replies.empty() + !h.cut_offs.empty();
  REQUIRE(outcomes == 1);
  if (!h.handled.empty()) {
    CHECK(h.handled.front() == ipc::type_of(m));
    return Outcome::handled;
  }
  return h.replies.empty() ? Outcome::cut_off : Outcome::refused;
}

}  // namespace

TEST_CASE("the monitor handles, refuses or cuts off every message in every phase", "[monitor]") {
  for (bool front : {false, true}) {
    for (SessionKind kind : {SessionKind::ssh, SessionKind::web, SessionKind::metrics}) {
      for (SessionPhase phase : kSessionPhases) {
        for (const auto& m : every_message()) {
          INFO("front " << front << ", kind " << static_cast<int>(kind) << ", phase "
                        << static_cast<int>(phase) << ", message " << ipc::type_name(ipc::type_of(m)));
          FakeHandler h;
          CHECK(run(phase, m, h, kind, front) == expected(ipc::type_of(m), phase, kind, front));
        }
      }
    }
  }
}

TEST_CASE("a web session asking for a key login, or an SSH one for a token login, is cut off", "[monitor]") {
  FakeHandler web;
  REQUIRE(run(SessionPhase::preauth, ipc::AuthorizeReq{}, web, SessionKind::web) == Outcome::cut_off);
  CHECK(web.cut_offs.front() == "unpermitted request authorize_req");
  FakeHandler ssh;
  CHECK(run(SessionPhase::preauth, ipc::WebAuthorizeReq{}, ssh, SessionKind::ssh) == Outcome::cut_off);
  FakeHandler honest;
  CHECK(run(SessionPhase::preauth, ipc::WebAuthorizeReq{}, honest, SessionKind::web) == Outcome::handled);
}

TEST_CASE("only a metrics session may ask for the metrics, and it may ask nothing else", "[monitor]") {
  FakeHandler ssh;
  REQUIRE(run(SessionPhase::preauth, ipc::MetricsReq{}, ssh, SessionKind::ssh) == Outcome::cut_off);
  CHECK(ssh.cut_offs.front() == "unpermitted request metrics_req");
  FakeHandler logged_in;
  CHECK(run(SessionPhase::authorized, ipc::MetricsReq{}, logged_in, SessionKind::web) == Outcome::cut_off);
  FakeHandler scraper;
  CHECK(run(SessionPhase::preauth, ipc::MetricsReq{}, scraper, SessionKind::metrics) == Outcome::handled);
  FakeHandler login;
  CHECK(run(SessionPhase::preauth, ipc::WebAuthorizeReq{}, login, SessionKind::metrics) == Outcome::cut_off);
  FakeHandler key;
  CHECK(run(SessionPhase::preauth, ipc::AuthorizeReq{}, key, SessionKind::metrics) == Outcome::cut_off);
}

TEST_CASE("only a front's logged-in session may ask for a node connection", "[monitor]") {
  FakeHandler node;
  REQUIRE(run(SessionPhase::authorized, ipc::NodeConnectReq{}, node) == Outcome::cut_off);
  CHECK(node.cut_offs.front() == "unpermitted request node_connect_req");
  FakeHandler front;
  CHECK(run(SessionPhase::authorized, ipc::NodeConnectReq{}, front, SessionKind::ssh, true) ==
        Outcome::handled);
  FakeHandler early;
  CHECK(run(SessionPhase::preauth, ipc::NodeConnectReq{}, early, SessionKind::ssh, true) == Outcome::cut_off);
}

TEST_CASE("a revoked session's request is answered with the revocation", "[monitor]") {
  FakeHandler h;
  REQUIRE(run(SessionPhase::revoked, ipc::ActionReq{}, h) == Outcome::refused);
  const auto* answer = std::get_if<ipc::ActionAns>(&h.replies.front());
  REQUIRE(answer != nullptr);
  CHECK_FALSE(answer->ok);
  CHECK(answer->text == kRevokedText);
}

TEST_CASE("a request that carries a descriptor ends the session, whatever it is", "[monitor]") {
  FakeHandler h;
  SessionRecord s = session_in(SessionPhase::authorized);
  monitor(s, ipc::Received{ipc::StatusReq{}, UniqueFd(::dup(2))}, h, TokenBucket::Clock::now());
  CHECK(h.handled.empty());
  REQUIRE(h.cut_offs.size() == 1);
  CHECK(h.cut_offs.front() == "unpermitted request status_req");
}

TEST_CASE("a session over its request budget is cut off; log records do not count", "[monitor]") {
  FakeHandler h;
  SessionRecord s = session_in(SessionPhase::authorized);
  auto now = TokenBucket::Clock::now();
  for (int i = 0; i < 1000; ++i) monitor(s, ipc::Received{ipc::LogRecord{}, {}}, h, now);
  CHECK(h.cut_offs.empty());
  for (int i = 0; i < static_cast<int>(kRequestBurst); ++i)
    monitor(s, ipc::Received{ipc::WhoReq{}, {}}, h, now);
  CHECK(h.cut_offs.empty());
  monitor(s, ipc::Received{ipc::WhoReq{}, {}}, h, now);
  REQUIRE(h.cut_offs.size() == 1);
  CHECK(h.cut_offs.front().find("request budget exceeded") != std::string::npos);
  // A second later the bucket has refilled: an honest session goes on.
  h.cut_offs.clear();
  monitor(s, ipc::Received{ipc::WhoReq{}, {}}, h, now + std::chrono::seconds(1));
  CHECK(h.cut_offs.empty());
}
