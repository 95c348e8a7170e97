// The session process's side of the IPC: one blocking call per request, like OpenSSH's
// monitor_wrap.c. The broker answers from memory, so a call waits milliseconds, not seconds.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "base/error.h"
#include "gateway/ipc/ipc.h"

namespace xcg::gateway {

class BrokerClient {
 public:
  explicit BrokerClient(int fd) : fd_(fd) {}

  // Waits as long as it takes: a spare session is parked here until a connection comes, and
  // then gets it with the hello, in `connection` (empty when the connection came with the exec).
  Result<ipc::Hello> hello(UniqueFd& connection);
  Result<ipc::Hello> hello();
  Result<ipc::AuthorizeAns> authorize(const ipc::AuthorizeReq& req);
  // xcg-web: may this browser console token log in? Answered like authorize.
  Result<ipc::AuthorizeAns> web_authorize(const ipc::WebAuthorizeReq& req);
  // A front's xcg-web, after its token was accepted: the front's host keys, which the broker
  // sends unasked with that answer. The caller wipes them.
  Result<ipc::FrontKey> front_key();
  Result<ipc::StatusAns> status();
  Result<ipc::ActionAns> action(config::Action a);
  // On success the console socket is in `console`.
  Result<ipc::AttachAns> attach(UniqueFd& console);
  // The last `lines` lines of the domain's console log.
  Result<ipc::LogAns> console_log(unsigned lines);
  // Who is attached to the domain's console, one line each.
  Result<ipc::WhoAns> who();
  // Sends SysRq `key` ([0-9a-z]) to the guest, or an NMI for key 0.
  Result<ipc::ActionAns> sysrq(char key);
  // A one-time browser console link for the session's domain, and how long it is valid.
  Result<ipc::WeblinkAns> weblink();
  // A front's: a connection to the node that runs the domain; on success the socket is in `node`.
  // Waits as long as the broker's connect (seconds at most), which is the customer's wait anyway.
  // `moved_from`: the node that said the domain migrated away (ipc::NodeConnectReq); the
  // broker then waits for the registry to name another, up to its deadline.
  Result<ipc::NodeConnectAns> node_connect(UniqueFd& node, const std::string& moved_from = "");
  // A metrics session's one question: the metrics text.
  Result<ipc::MetricsAns> metrics();
  void log(int level, std::string_view text) noexcept;

  // The broker may speak first, to end the session (revoked key, operator's kick) or to say
  // that a reload narrowed its rights. Such a message can arrive at any time, also while a
  // call waits for its answer; it is kept here. Call when the descriptor is readable; never
  // blocks.
  void take_unsolicited();
  const std::optional<std::string>& revoked() const { return revoked_; }
  // The revocation hands the customer over to another node (ipc::Revoke::handover).
  bool handover() const { return handover_; }
  // The rights taken away since the last call, if any.
  std::optional<ipc::Narrowed> take_narrowed() { return std::exchange(narrowed_, std::nullopt); }
  bool narrowed_pending() const { return narrowed_.has_value(); }
  int fd() const { return fd_; }

 private:
  // Longer than the toolstack's own timeout (xen.timeout, at most a few tens of seconds), so that
  // a slow `xl create` is reported by the broker rather than cut short here.
  static constexpr int kAnswerTimeoutMs = 120'000;
  Result<ipc::Received> call(const ipc::Message& request, ipc::Type answer);
  // A negative `timeout_ms` waits for as long as the broker lives.
  Result<ipc::Received> wait_for(ipc::Type answer, int timeout_ms = kAnswerTimeoutMs);
  // Keeps a revoke or narrowed message; false for anything else.
  bool keep_unsolicited(const ipc::Message& m);

  int fd_;
  std::optional<std::string> revoked_;
  bool handover_ = false;
  std::optional<ipc::Narrowed> narrowed_;  // accumulated until taken
};

}  // namespace xcg::gateway
