#include <catch2/catch.hpp>

#include <map>
#include <utility>

#include "gateway/broker/request_table.h"

using namespace xcg::gateway;
using ipc::Type;
using Clock = TokenBucket::Clock;

namespace {

// The rules written out once more, by hand, as the docs state them.
Verdict expected(Type t, SessionPhase p) {
  const auto H = Verdict::handle, R = Verdict::refuse, X = Verdict::cut_off;
  switch (t) {
    case Type::log: return H;  // in every phase, pre-authentication included
    case Type::authorize_req:
    case Type::web_authorize_req:
    case Type::metrics_req: return p == SessionPhase::preauth ? H : X;
    case Type::status_req:
    case Type::action_req:
    case Type::attach_req:
    case Type::log_req:
    case Type::who_req:
    case Type::sysrq_req:
    case Type::weblink_req:
    case Type::node_connect_req:
      return p == SessionPhase::preauth ? X : p == SessionPhase::authorized ? H : R;
    default: return X;  // hello, answers, revoke: broker -> session only
  }
}

const char* phase_name(SessionPhase p) {
  return p == SessionPhase::preauth ? "preauth" : p == SessionPhase::authorized ? "authorized" : "revoked";
}

// A default-constructed message of every alternative.
std::vector<ipc::Message> every_message() {
  return []<size_t... I>(std::index_sequence<I...>) {
    return std::vector<ipc::Message>{ipc::Message(std::in_place_index<I>)...};
  }
  (std::make_index_sequence<std::variant_size_v<ipc::Message>>{});
}

}  // namespace

TEST_CASE("every message type in every phase is handled, refused or cut off as documented",
          "[request_table]") {
  for (Type t : ipc::kMessageTypes) {
    for (SessionPhase p : kSessionPhases) {
      INFO(ipc::type_name(t) << " in " << phase_name(p));
      CHECK(request_verdict(t, p) == expected(t, p));
    }
  }
}

TEST_CASE("a revoked session gets nothing done, only refusals", "[request_table]") {
  for (Type t : ipc::kMessageTypes) {
    INFO(ipc::type_name(t));
    if (t != Type::log) CHECK(request_verdict(t, SessionPhase::revoked) != Verdict::handle);
  }
}

TEST_CASE("unknown message types are cut off in every phase", "[request_table]") {
  for (SessionPhase p : kSessionPhases) {
    CHECK(request_verdict(static_cast<Type>(3), p) == Verdict::cut_off);
    CHECK(request_verdict(static_cast<Type>(200), p) == Verdict::cut_off);
  }
}

TEST_CASE("every refused request gets its own answer type, with the reason where it has room",
          "[request_table]") {
  const std::map<Type, Type> answer_of{
      {Type::status_req, Type::status_ans},   {Type::action_req, Type::action_ans},
      {Type::attach_req, Type::attach_ans},   {Type::log_req, Type::log_ans},
      {Type::who_req, Type::who_ans},         {Type::sysrq_req, Type::action_ans},
      {Type::weblink_req, Type::weblink_ans}, {Type::node_connect_req, Type::node_connect_ans}};
  for (const ipc::Message& m : every_message()) {
    Type t = ipc::type_of(m);
    INFO(ipc::type_name(t));
    bool refused = request_verdict(t, SessionPhase::revoked) == Verdict::refuse;
    auto answer = refusal_for(m, kRevokedText);
    REQUIRE(answer.has_value() == refused);
    if (!answer) continue;
    CHECK(ipc::type_of(*answer) == answer_of.at(t));
    CHECK(ipc::encode(*answer).find(kRevokedText) != std::string::npos);
    if (t != Type::who_req) CHECK(ipc::encode(*answer)[1] == '\0');  // ok = false; who has no ok
  }
}

TEST_CASE("only a front's sessions may ask for a node connection", "[request_table]") {
  CHECK_FALSE(role_permits(Type::node_connect_req, false));
  CHECK(role_permits(Type::node_connect_req, true));
  CHECK(role_permits(Type::status_req, false));
}

TEST_CASE("only a front's browser session with an accepted token gets the front's key", "[request_table]") {
  CHECK(gets_front_key(/*web=*/true, /*front=*/true, /*token_accepted=*/true));
  CHECK_FALSE(gets_front_key(true, true, false));  // refused token: the process may be anyone's
  CHECK_FALSE(gets_front_key(true, false, true));  // on a node or a single host: no node to log in to
  CHECK_FALSE(gets_front_key(false, true, true));  // an SSH session: its hello has the keys
  CHECK(request_verdict(Type::front_key, SessionPhase::authorized) ==
        Verdict::cut_off);  // never from a session
}

TEST_CASE("the metrics are a metrics session's only question", "[request_table]") {
  CHECK(metrics_permits(Type::metrics_req, true));
  CHECK(metrics_permits(Type::log, true));
  CHECK_FALSE(metrics_permits(Type::web_authorize_req, true));
  CHECK_FALSE(metrics_permits(Type::authorize_req, true));
  CHECK_FALSE(metrics_permits(Type::metrics_req, false));
  CHECK(metrics_permits(Type::authorize_req, false));
}

TEST_CASE("the request budget allows a burst, then the rate", "[request_table]") {
  TokenBucket bucket(10, 5);
  auto t = Clock::now();
  for (int i = 0; i < 10; ++i) REQUIRE(bucket.take(t));
  CHECK_FALSE(bucket.take(t));
  CHECK_FALSE(bucket.take(t + std::chrono::milliseconds(100)));  // half a token back
  CHECK(bucket.take(t + std::chrono::milliseconds(200)));
  CHECK_FALSE(bucket.take(t + std::chrono::milliseconds(200)));
  // Refills up to the burst, never beyond.
  auto later = t + std::chrono::hours(1);
  for (int i = 0; i < 10; ++i) REQUIRE(bucket.take(later));
  CHECK_FALSE(bucket.take(later));
}

TEST_CASE("a customer holding a menu key never exhausts the request budget", "[request_table]") {
  TokenBucket bucket(kRequestBurst, kRequestsPerSecond);
  auto t = Clock::now();
  // 30 Hz autorepeat for a minute; each refresh asks who and status.
  for (int key = 0; key < 30 * 60; ++key) {
    auto now = t + std::chrono::microseconds(key * 1'000'000 / 30);
    REQUIRE(bucket.take(now));
    REQUIRE(bucket.take(now));
  }
}

TEST_CASE("refused key offers are summed up: count, key types, the first five fingerprints",
          "[request_table]") {
  RefusedOffers offers;
  for (int i = 0; i < 30; ++i)
    offers.add(i == 0 ? "web1" : "other", i % 2 ? "ssh-rsa" : "ssh-ed25519", "SHA256:k" + std::to_string(i));
  offers.add("web1", "bad\nkey\ttype", "");  // unparsable: no fingerprint, type made printable
  CHECK(offers.count() == 31);
  CHECK(offers.first_user() == "web1");
  CHECK(offers.first_fingerprint() == "SHA256:k0");
  auto fields = offers.audit_fields();
  const std::vector<std::pair<std::string, std::string>> want{
      {"stage", "key"},
      {"offers", "31"},
      {"key_types", "ssh-ed25519,ssh-rsa,bad?key type"},
      {"fingerprints", "SHA256:k0,SHA256:k1,SHA256:k2,SHA256:k3,SHA256:k4"}};
  CHECK(fields == want);
}
