// Which session messages the broker answers, in which phase, and how many: the rules of
// Broker::on_session_message as pure data, so that the compiler and the unit tests check them
// (the row table of OpenSSH's monitor.c, with the phases as columns).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/log.h"
#include "gateway/ipc/ipc.h"

namespace xcg::gateway {

// Where a session is, as far as its requests are concerned. `revoked`: told to go (its key was
// removed by a reload, or the operator kicked it); it is SIGKILLed kRevokeGrace later.
enum class SessionPhase : uint8_t { preauth, authorized, revoked };
inline constexpr std::array kSessionPhases{SessionPhase::preauth, SessionPhase::authorized,
                                           SessionPhase::revoked};

enum class Verdict : uint8_t {
  handle,   // hand the request to its handler
  refuse,   // answer it with kRevokedText and do nothing else
  cut_off,  // SIGKILL the session: no honest session sends this now
};

// A revoked session may have sent its request before the revoke reached it: it gets an answer
// it can show, and the customer sees why, instead of a console that just goes away.
inline constexpr std::string_view kRevokedText = "this session has been revoked";

struct RequestRule {
  ipc::Type type;
  Verdict preauth, authorized, revoked;
  constexpr Verdict in(SessionPhase p) const {
    return p == SessionPhase::preauth ? preauth : p == SessionPhase::authorized ? authorized : revoked;
  }
};

namespace rules {
inline constexpr Verdict H = Verdict::handle, R = Verdict::refuse, X = Verdict::cut_off;
}  // namespace rules

// One row per alternative of ipc::Message, in its order (checked below).
inline constexpr RequestRule kRequestRules[] = {
    //  type                     preauth    authorized  revoked
    {ipc::Type::hello, rules::X, rules::X, rules::X},
    {ipc::Type::log, rules::H, rules::H, rules::H},  // rate-limited of its own
    {ipc::Type::authorize_req, rules::H, rules::X, rules::X},
    {ipc::Type::authorize_ans, rules::X, rules::X, rules::X},
    {ipc::Type::status_req, rules::X, rules::H, rules::R},
    {ipc::Type::status_ans, rules::X, rules::X, rules::X},
    {ipc::Type::action_req, rules::X, rules::H, rules::R},
    {ipc::Type::action_ans, rules::X, rules::X, rules::X},
    {ipc::Type::attach_req, rules::X, rules::H, rules::R},
    {ipc::Type::attach_ans, rules::X, rules::X, rules::X},
    {ipc::Type::log_req, rules::X, rules::H, rules::R},
    {ipc::Type::log_ans, rules::X, rules::X, rules::X},
    {ipc::Type::who_req, rules::X, rules::H, rules::R},
    {ipc::Type::who_ans, rules::X, rules::X, rules::X},
    {ipc::Type::sysrq_req, rules::X, rules::H, rules::R},
    {ipc::Type::revoke, rules::X, rules::X, rules::X},
    {ipc::Type::narrowed, rules::X, rules::X, rules::X},
    {ipc::Type::web_authorize_req, rules::H, rules::X, rules::X},  // and kind_permits
    {ipc::Type::weblink_req, rules::X, rules::H, rules::R},
    {ipc::Type::weblink_ans, rules::X, rules::X, rules::X},
    {ipc::Type::node_connect_req, rules::X, rules::H, rules::R},  // and only on a front
    {ipc::Type::node_connect_ans, rules::X, rules::X, rules::X},
    {ipc::Type::metrics_req, rules::H, rules::X, rules::X},  // and only from a metrics session
    {ipc::Type::metrics_ans, rules::X, rules::X, rules::X},
    {ipc::Type::front_key, rules::X, rules::X, rules::X},
};

constexpr bool rules_match_messages() {
  if (std::size(kRequestRules) != std::size(ipc::kMessageTypes)) return false;
  for (size_t i = 0; i < std::size(kRequestRules); ++i) {
    const RequestRule& r = kRequestRules[i];
    if (r.type != ipc::kMessageTypes[i]) return false;
    // Only requests (even types) are ever answered; answers and hello travel the other way.
    bool request = static_cast<uint8_t>(r.type) % 2 == 0;
    for (SessionPhase p : kSessionPhases)
      if (!request && r.in(p) != Verdict::cut_off) return false;
  }
  return true;
}
static_assert(rules_match_messages(), "every ipc::Message alternative needs its row, in order");

// The one place that decides; an unknown type is cut off.
constexpr Verdict request_verdict(ipc::Type t, SessionPhase p) {
  for (const RequestRule& r : kRequestRules)
    if (r.type == t) return r.in(p);
  return Verdict::cut_off;
}

// Each kind of session logs in its own way: xcg-session with keys, xcg-web with a token.
// The other's login request is one no honest session of the kind sends.
constexpr bool kind_permits(ipc::Type t, bool web) {
  if (t == ipc::Type::authorize_req) return !web;
  if (t == ipc::Type::web_authorize_req) return web;
  return true;
}

// A metrics session (xcg-web serving the Prometheus endpoint) never logs in: it asks for the
// metrics, and may log; no other session may ask for them.
constexpr bool metrics_permits(ipc::Type t, bool metrics) {
  if (metrics) return t == ipc::Type::metrics_req || t == ipc::Type::log;
  return t != ipc::Type::metrics_req;
}

// Only a front relays its customers to nodes; no session of a node asks for one.
constexpr bool role_permits(ipc::Type t, bool front) { return t != ipc::Type::node_connect_req || front; }

// Who gets the front's host keys (ipc::FrontKey): a front's browser session once its token was
// accepted. A front's SSH session has them in its hello (its SSH server needs them); nothing on a
// node, no metrics session, no refused or unanswered browser.
constexpr bool gets_front_key(bool web, bool front, bool token_accepted) {
  return web && front && token_accepted;
}

// The refusal answer to a request (kRevokedText where it has room for a reason); nullopt
// for messages that have no answer.
std::optional<ipc::Message> refusal_for(const ipc::Message& request, std::string_view text);

// Requests per session, `log` excepted: a refresh key costs two (who, status), so 64 a second
// is twice the fastest keyboard autorepeat (30 Hz); a customer in the menu, even holding a key
// down, never reaches it. Before the bucket, a session could ask for a Xen status (a xenstore
// scan) tens of thousands of times a second.
inline constexpr double kRequestBurst = 128;
inline constexpr double kRequestsPerSecond = 64;
// Session log records: a session writes a handful; the rest are dropped and counted.
inline constexpr double kLogBurst = 32;
inline constexpr double kLogLinesPerSecond = 4;
// Session log records are never written above this level, so they cannot pass for the
// broker's own warnings.
inline constexpr log::Level kMaxSessionLogLevel = log::Level::info;

// Starts full; refills continuously up to `burst`.
class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  TokenBucket(double burst, double per_second) : burst_(burst), rate_(per_second), tokens_(burst) {}
  // Takes one token; false if there is none.
  bool take(Clock::time_point now);

 private:
  double burst_;
  double rate_;
  double tokens_;
  Clock::time_point last_{};
};

// The refused unsigned key offers of one connection, for one audit record instead of one each:
// an agent offers every key it holds, and a stranger can offer max_key_offers keys per
// connection.
class RefusedOffers {
 public:
  static constexpr size_t kMaxFingerprints = 5;
  static constexpr size_t kMaxKeyTypes = 5;
  void add(std::string_view user, std::string_view key_type, const std::string& fingerprint);
  unsigned count() const { return count_; }
  const std::string& first_user() const { return first_user_; }
  // The first fingerprint (the record's `fingerprint`), "" if none parsed.
  std::string first_fingerprint() const { return fingerprints_.empty() ? "" : fingerprints_.front(); }
  // {"stage","key"}, {"offers","N"}, {"key_types","a,b"}, {"fingerprints","f1,f2,..."}
  std::vector<std::pair<std::string, std::string>> audit_fields() const;

 private:
  unsigned count_ = 0;
  std::string first_user_;
  std::vector<std::string> key_types_;
  std::vector<std::string> fingerprints_;
};

}  // namespace xcg::gateway
