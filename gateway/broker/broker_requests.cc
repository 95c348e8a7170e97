// The broker's answers to session processes. Every message from a session is hostile until
// proven otherwise: it is size-checked and decoded by ipc::receive, permitted only in the right
// phase, and can only ever concern the domain the session was authorized for.
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include <fmt/format.h>

#include "base/log.h"
#include "base/text.h"
#include "gateway/broker/broker.h"
#include "gateway/broker/front_login.h"

namespace xcg::gateway {
namespace {

std::string done_text(const std::string& domain, xen::Lifecycle a) {
  switch (a) {
    case xen::Lifecycle::start: return domain + ": starting";
    case xen::Lifecycle::shutdown: return domain + ": shutting down";
    case xen::Lifecycle::reboot: return domain + ": rebooting";
    case xen::Lifecycle::destroy: return domain + ": destroyed";
  }
  return domain;
}

std::optional<xen::Lifecycle> lifecycle_for(config::Action a) {
  switch (a) {
    case config::Action::start: return xen::Lifecycle::start;
    case config::Action::shutdown: return xen::Lifecycle::shutdown;
    case config::Action::reboot: return xen::Lifecycle::reboot;
    case config::Action::destroy: return xen::Lifecycle::destroy;
    case config::Action::console:
    case config::Action::sysrq: return std::nullopt;
  }
  return std::nullopt;
}

constexpr size_t kMaxLogAnswer = 32 * 1024;
// One action per session at a time: a session cannot pile up toolstack runs.
constexpr std::string_view kActionBusy = "another action is still in progress";
constexpr size_t kMaxWhoLines = 50;

// The answer to an action: `ok_text` if it went well, else why not.
auto action_answer(std::string ok_text) {
  return [ok_text = std::move(ok_text)](const Result<void>& r) -> ipc::Message {
    return ipc::ActionAns{r.has_value(), r ? ok_text : r.error().message};
  };
}

}  // namespace

void Broker::on_session_message(uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end() || !it->second.ipc) return;
  SessionRecord& s = it->second;
  auto received = ipc::receive(s.ipc.get());
  if (!received) return on_receive_error(s, received.error());
  monitor(s, *received, *this, parts_.now());
}

void Broker::on_receive_error(SessionRecord& s, const Error& e) {
  if (e.code == Errc::system && e.sys_errno == EAGAIN) return;
  if (e.code == Errc::peer_closed) return s.close_ipc();  // the session closed its end: it is exiting
  cut_off(s, "bad message: " + e.message);
}

void Broker::on(SessionRecord& s, const ipc::StatusReq&) {
  auto status = hypervisor_->status(s.domain);
  if (!status) return reply(s, ipc::StatusAns{false, status.error().message});
  reply(s, ipc::StatusAns{true, xen::format_status(*status)});
}

void Broker::on(SessionRecord& s, const ipc::AttachReq&) {
  UniqueFd pass;
  ipc::Message answer = answer_attach(s, pass);
  send(s, answer, pass.get());
}

void Broker::reply(SessionRecord& s, const ipc::Message& answer) { send(s, answer); }

void Broker::send(SessionRecord& s, const ipc::Message& answer, int pass_fd) {
  if (!s.ipc) return;
  if (auto sent = ipc::send(s.ipc.get(), answer, pass_fd); !sent) cut_off(s, sent.error().message);
}

// Session records are the session's words, not the broker's: capped at kMaxSessionLogLevel and
// rate-limited, so that a session can neither flood the journal nor raise a false alarm.
void Broker::on(SessionRecord& s, const ipc::LogRecord& record) {
  if (!s.log_records.take(parts_.now())) {
    ++s.dropped_log_records;
    return;
  }
  report_dropped_log_records(s);
  auto level = std::min(static_cast<log::Level>(std::min<uint8_t>(record.level, 3)), kMaxSessionLogLevel);
  log::write(level, fmt::format("session {} ({}): {}", s.pid, s.remote, printable(record.text, 1000)));
}

void Broker::report_dropped_log_records(SessionRecord& s) {
  if (s.dropped_log_records == 0) return;
  log::info("session {} ({}): {} log records dropped (more than {} at once or {} a second)", s.pid, s.remote,
            s.dropped_log_records, kLogBurst, kLogLinesPerSecond);
  s.dropped_log_records = 0;
}

void Broker::on(SessionRecord& s, const ipc::AuthorizeReq& req) {
  if (++s.auth_requests > s.max_auth_requests) return cut_off(s, "too many authentication attempts");
  reply(s, answer_authorize(s, req));
}

void Broker::audit_refused_offers(SessionRecord& s) {
  if (s.refused_offers.count() == 0) return;
  audit_.write(AuditEvent{"auth_failure", s.remote, s.refused_offers.first_user(),
                          s.refused_offers.first_fingerprint(), s.refused_offers.audit_fields()});
  s.refused_offers = {};
}

void Broker::settle_requests(SessionRecord& s) {
  report_dropped_log_records(s);
  audit_refused_offers(s);
}

ipc::Message Broker::answer_authorize(SessionRecord& s, const ipc::AuthorizeReq& req) {
  auto key = config::parse_public_key(req.key_type + " " + req.key_base64);
  if (key && config_->front_for_key(key->blob)) return answer_front_authorize(s, req, *key);
  const config::Domain* domain = key ? config_->domain_for_key(key->blob) : nullptr;
  std::string fingerprint = key ? key->fingerprint() : "";
  // Unknown key, key of another domain, unknown domain: one answer, so nothing tells a stranger
  // which domains exist.
  if (domain == nullptr || domain->name != req.user || (key && key->type != req.key_type))
    return refuse_authorize(s, req, fingerprint);
  if (req.signature_ok && !admission_.domain_has_room(domain->name)) {
    s.refused = LoginFailure::domain_full;
    audit_.write(AuditEvent{"auth_failure",
                            s.remote,
                            domain->name,
                            fingerprint,
                            {{"stage", "signature"}, {"reason", "max_sessions_per_domain reached"}}});
    log::warn("{}: refusing a login from {}: max_sessions_per_domain reached", domain->name, s.remote);
    return ipc::AuthorizeAns{};
  }
  if (req.signature_ok) accept_login(s, *domain, fingerprint, key->blob);
  const config::DomainKey* entry = domain->key_for(key->blob);
  return grant_answer(*domain, fingerprint, entry && entry->readonly);
}

ipc::AuthorizeAns Broker::refuse_authorize(SessionRecord& s, const ipc::AuthorizeReq& req,
                                           const std::string& fingerprint) {
  // Unsigned offers are summed up in one record (audit_refused_offers): an agent offers
  // every key it holds.
  s.refused = LoginFailure::key;
  if (!req.signature_ok) s.refused_offers.add(req.user, req.key_type, fingerprint);
  else
    audit_.write(
        AuditEvent{"auth_failure", s.remote, printable(req.user, 64), fingerprint, {{"stage", "signature"}}});
  return ipc::AuthorizeAns{};
}

ipc::AuthorizeAns Broker::grant_answer(const config::Domain& domain, const std::string& fingerprint,
                                       bool readonly) const {
  ipc::AuthorizeAns ans;
  ans.ok = true;
  ans.domain = domain.name;
  ans.console_on_login = domain.on_login == config::OnLogin::console;
  ans.actions = domain.actions;
  ans.fingerprint = fingerprint;
  ans.readonly = readonly;
  return ans;
}

// The session stands for the customer: its fingerprint and key are the customer's, so a
// change of the key map revokes or narrows it as it would a direct login.
ipc::Message Broker::answer_front_authorize(SessionRecord& s, const ipc::AuthorizeReq& req,
                                            const config::PublicKey& front_key) {
  auto grant = front_grant(*config_, front_key, req.user);
  if (!grant || front_key.type != req.key_type) return refuse_authorize(s, req, front_key.fingerprint());
  const auto& domain = *grant->domain;
  std::string fingerprint = grant->key ? grant->key->key.fingerprint() : std::string(kBrowserFingerprint);
  std::string blob = grant->key ? grant->key->key.blob : "";
  if (!req.signature_ok) return grant_answer(domain, fingerprint, grant->readonly);
  if (!admission_.domain_has_room(domain.name)) {
    s.refused = LoginFailure::domain_full;
    audit_.write(AuditEvent{"auth_failure",
                            s.remote,
                            domain.name,
                            fingerprint,
                            {{"stage", "signature"},
                             {"reason", "max_sessions_per_domain reached"},
                             {"front_fp", front_key.fingerprint()}}});
    return ipc::AuthorizeAns{};
  }
  s.front_fingerprint = front_key.fingerprint();
  s.front_key_blob = front_key.blob;
  accept_login(s, domain, fingerprint, blob, grant->readonly);
  return grant_answer(domain, fingerprint, grant->readonly);
}

void Broker::accept_login(SessionRecord& s, const config::Domain& domain, const std::string& fingerprint,
                          const std::string& blob, bool readonly) {
  const config::DomainKey* entry = domain.key_for(blob);
  s.fingerprint = fingerprint;
  s.key_blob = blob;
  s.readonly = readonly || (entry && entry->readonly);
  s.key_label = entry && !entry->key.comment.empty() ? entry->key.comment : fingerprint;
  audit_refused_offers(s);  // the agent's other keys, offered first
  set_authorized(s, domain.name);
  audit(s, "auth_success",
        {{"key", entry ? entry->key.comment : ""}, {"readonly", s.readonly ? "yes" : "no"}});
  audit(s, "session_start");
}

// Why the session may not run `what` now, or "" if it may.
std::string Broker::action_refusal(const SessionRecord& s, const std::string& what,
                                   config::Action needed) const {
  auto it = config_->domains.find(s.domain);
  if (s.readonly)
    return fmt::format("{} is not allowed: this key has read-only access to {}", what, s.domain);
  if (it == config_->domains.end() || !it->second.allows(needed))
    return fmt::format("{} is not allowed for {}", config::action_name(needed), s.domain);
  if (!s.action_in_flight.empty()) return std::string(kActionBusy);
  if (auto moving = migrations_ ? migrations_->busy(s.domain) : std::nullopt) return *moving;
  return "";
}

void Broker::on(SessionRecord& s, const ipc::ActionReq& req) {
  auto lifecycle = lifecycle_for(req.action);
  std::string name(config::action_name(req.action));
  std::string refusal = lifecycle ? action_refusal(s, name, req.action) : name + " is not a lifecycle action";
  if (!refusal.empty()) {
    audit(s, "action", {{"action", name}, {"result", "error"}, {"reason", refusal}});
    return send_answer(s.id, ipc::ActionAns{false, refusal});
  }
  auto act = [this, domain = s.domain, action = *lifecycle](xen::Hypervisor::ActDone done) {
    hubs_->action_started(domain, action);  // whatever the domain does next is this action's doing
    hypervisor_->act_async(domain, action, [this, domain, action, done = std::move(done)](Result<void> r) {
      if (!r) hubs_->action_failed(domain, action);
      done(std::move(r));
    });
  };
  run_action(s, name, std::move(act), action_answer(done_text(s.domain, *lifecycle)));
}

// The Xen toolstack may take seconds (xl create, xl trigger nmi): the answer goes out when it
// is done, and only if the session is still there. Meanwhile the loop serves everyone else.
void Broker::run_action(SessionRecord& s, const std::string& name, Act act, AnswerFor answer) {
  s.action_in_flight = name;
  uint64_t id = s.id;
  // Audit with copies: the session record may be gone by the time the action is done.
  AuditEvent record{"action", s.remote, s.domain, s.fingerprint, {{"action", name}}};
  if (!s.front_fingerprint.empty()) record.extra.emplace_back("front_fp", s.front_fingerprint);  // as audit()
  auto job = [this, id, record = std::move(record), act = std::move(act),
              answer = std::move(answer)](ActionQueue::Finished finished) mutable {
    act([this, id, record, answer, finished = std::move(finished)](Result<void> done) mutable {
      record.extra.emplace_back("result", done ? "ok" : "error");
      if (!done) record.extra.emplace_back("reason", done.error().message);
      audit_.write(record);
      if (auto it = sessions_.find(id); it != sessions_.end()) it->second.action_in_flight.clear();
      send_answer(id, answer(done));
      finished();
    });
  };
  actions_.submit(s.domain, id, std::move(job));
}

void Broker::send_answer(uint64_t id, const ipc::Message& answer) {
  auto it = sessions_.find(id);
  if (it != sessions_.end()) send(it->second, answer);
}

ipc::Message Broker::answer_attach(SessionRecord& s, UniqueFd& pass) {
  auto it = config_->domains.find(s.domain);
  if (it == config_->domains.end() || !it->second.allows(config::Action::console))
    return ipc::AttachAns{false, fmt::format("console is not allowed for {}", s.domain)};
  auto status = hypervisor_->status(s.domain);
  if (!status) return ipc::AttachAns{false, status.error().message};
  // While shutting down (a reboot, say) the hub still has the console and follows the domain.
  if (status->state != xen::DomainState::running && status->state != xen::DomainState::shutting_down)
    return ipc::AttachAns{false,
                          fmt::format("{} is not running ({})", s.domain, xen::state_name(status->state))};
  ConsoleHub* hub = hubs_->find(s.domain);
  if (hub == nullptr) return ipc::AttachAns{false, "no console hub"};
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    return ipc::AttachAns{false, "cannot attach: out of resources"};
  UniqueFd hub_end(pair[0]);
  pass.reset(pair[1]);
  // Audit with copies: the session record may be gone by the time the viewer detaches.
  AuditEvent detach{"console_detach", s.remote, s.domain, s.fingerprint, {}};
  hub->attach(std::move(hub_end),
              ViewerInfo{.label = s.key_label, .readonly = s.readonly, .session_id = s.id},
              [this, detach] { audit_.write(detach); });
  audit(s, "console_attach", {{"readonly", s.readonly ? "yes" : "no"}});
  return ipc::AttachAns{true, ""};
}

void Broker::on(SessionRecord& s, const ipc::LogReq& req) {
  ConsoleHub* hub = hubs_->find(s.domain);
  if (hub == nullptr) return reply(s, ipc::LogAns{false, "no console log for " + s.domain});
  unsigned lines = std::clamp<uint32_t>(req.lines, 1, 10000);
  auto text = hub->log().tail(lines, kMaxLogAnswer);
  if (!text) return reply(s, ipc::LogAns{false, text.error().message});
  reply(s, ipc::LogAns{true, std::move(*text)});
}

void Broker::on(SessionRecord& s, const ipc::WhoReq&) {
  ipc::WhoAns ans;
  ConsoleHub* hub = hubs_->find(s.domain);
  auto viewers = hub ? hub->viewers() : std::vector<ViewerInfo>{};
  for (const auto& v : viewers) {
    if (ans.viewers.size() == kMaxWhoLines) {
      ans.viewers.push_back(fmt::format("... and {} more", viewers.size() - kMaxWhoLines));
      break;
    }
    ans.viewers.push_back(fmt::format("{}{}, since {}", printable(v.label, 80),
                                      v.readonly ? " (read-only)" : "", utc_clock_time(v.since)));
  }
  reply(s, ans);
}

void Broker::on(SessionRecord& s, const ipc::SysrqReq& req) {
  std::string what = req.key == 0 ? "nmi" : fmt::format("sysrq {}", static_cast<char>(req.key));
  bool valid_key = req.key == 0 || config::valid_sysrq_key(static_cast<char>(req.key));
  std::string refusal = valid_key ? action_refusal(s, what, config::Action::sysrq) : "not a SysRq key";
  if (!refusal.empty()) {
    audit(s, "action", {{"action", what}, {"result", "error"}, {"reason", refusal}});
    return send_answer(s.id, ipc::ActionAns{false, refusal});
  }
  auto act = [this, domain = s.domain, key = static_cast<char>(req.key)](xen::Hypervisor::ActDone done) {
    hypervisor_->send_sysrq(domain, key, std::move(done));
  };
  run_action(s, what, std::move(act), action_answer(fmt::format("{}: {} sent", s.domain, what)));
}

}  // namespace xcg::gateway
