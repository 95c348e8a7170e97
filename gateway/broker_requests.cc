// The broker's answers to session processes. Every message from a session is hostile until
// proven otherwise: it is size-checked and decoded by ipc::receive, permitted only in the right
// phase, and can only ever concern the domain the session was authorized for.
#include <sys/socket.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include <fmt/format.h>

#include "base/log.h"
#include "base/text.h"
#include "gateway/broker.h"

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
constexpr size_t kMaxWhoLines = 50;

}  // namespace

bool Broker::permitted(const Session& s, ipc::Type t) const {
  switch (t) {
    case ipc::Type::log: return true;
    case ipc::Type::authorize_req: return s.phase == Phase::preauth;
    case ipc::Type::status_req:
    case ipc::Type::action_req:
    case ipc::Type::attach_req:
    case ipc::Type::log_req:
    case ipc::Type::who_req:
    case ipc::Type::sysrq_req: return s.phase == Phase::authorized;
    default: return false;  // answers and hello only ever travel broker -> session
  }
}

void Broker::on_session_message(uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end() || !it->second.ipc) return;
  Session& s = it->second;
  auto received = ipc::receive(s.ipc.get());
  if (!received) {
    if (received.error().code == Errc::system && received.error().sys_errno == EAGAIN) return;
    if (received.error().code == Errc::peer_closed) {  // the session closed its end: it is exiting
      loop_.remove(s.ipc.get());
      s.ipc.reset();
      return;
    }
    return cut_off(s, "bad message: " + received.error().message);
  }
  ipc::Type type = ipc::type_of(received->message);
  if (!permitted(s, type) || received->fd)
    return cut_off(s, fmt::format("unpermitted request {}", ipc::type_name(type)));

  UniqueFd pass;
  ipc::Message answer;
  if (auto* rec = std::get_if<ipc::LogRecord>(&received->message)) {
    auto level = static_cast<log::Level>(std::min<uint8_t>(rec->level, 3));
    log::write(level, fmt::format("session {} ({}): {}", s.pid, s.remote, printable(rec->text, 1000)));
    return;
  } else if (auto* auth = std::get_if<ipc::AuthorizeReq>(&received->message)) {
    if (++s.auth_requests > s.max_auth_requests)
      return cut_off(s, "too many authentication attempts");
    answer = answer_authorize(s, *auth);
  } else if (std::holds_alternative<ipc::StatusReq>(received->message)) {
    answer = answer_status(s);
  } else if (auto* act = std::get_if<ipc::ActionReq>(&received->message)) {
    return start_action(s, *act);  // answers when the toolstack is done, without blocking us
  } else if (auto* log_req = std::get_if<ipc::LogReq>(&received->message)) {
    answer = answer_log(s, *log_req);
  } else if (std::holds_alternative<ipc::WhoReq>(received->message)) {
    answer = answer_who(s);
  } else if (auto* sysrq = std::get_if<ipc::SysrqReq>(&received->message)) {
    answer = answer_sysrq(s, *sysrq);
  } else {
    answer = answer_attach(s, pass);
  }
  if (auto sent = ipc::send(s.ipc.get(), answer, pass.get()); !sent) cut_off(s, sent.error().message);
}

ipc::Message Broker::answer_authorize(Session& s, const ipc::AuthorizeReq& req) {
  ipc::AuthorizeAns ans;
  auto key = config::parse_public_key(req.key_type + " " + req.key_base64);
  const config::Domain* domain = key ? config_->domain_for_key(key->blob) : nullptr;
  std::string fingerprint = key ? key->fingerprint() : "";
  // Unknown key, key of another domain, unknown domain: one answer, so nothing tells a stranger
  // which domains exist.
  if (domain == nullptr || domain->name != req.user || (key && key->type != req.key_type)) {
    audit_.write(AuditEvent{"auth_failure", s.remote, printable(req.user, 64), fingerprint,
                            {{"stage", req.signature_ok ? "signature" : "key"}}});
    return ans;
  }
  const config::DomainKey* entry = domain->key_for(key->blob);
  if (req.signature_ok) {
    auto count = sessions_by_domain_.find(domain->name);
    if (count != sessions_by_domain_.end() && count->second >= config_->limits.max_sessions_per_domain) {
      audit_.write(AuditEvent{"auth_failure", s.remote, domain->name, fingerprint,
                              {{"stage", "signature"}, {"reason", "max_sessions_per_domain reached"}}});
      log::warn("{}: refusing a login from {}: max_sessions_per_domain reached", domain->name, s.remote);
      return ans;
    }
    s.fingerprint = fingerprint;
    s.key_blob = key->blob;
    s.readonly = entry && entry->readonly;
    s.key_label = entry && !entry->key.comment.empty() ? entry->key.comment : fingerprint;
    set_authorized(s, domain->name);
    audit(s, "auth_success", {{"key", entry ? entry->key.comment : ""}, {"readonly", s.readonly ? "yes" : "no"}});
    audit(s, "session_start");
  }
  ans.ok = true;
  ans.domain = domain->name;
  ans.console_on_login = domain->on_login == config::OnLogin::console;
  ans.actions = domain->actions;
  ans.fingerprint = fingerprint;
  ans.readonly = entry && entry->readonly;
  return ans;
}

ipc::Message Broker::answer_status(Session& s) {
  auto status = hypervisor_->status(s.domain);
  if (!status) return ipc::StatusAns{false, status.error().message};
  return ipc::StatusAns{true, xen::format_status(*status)};
}

void Broker::start_action(Session& s, const ipc::ActionReq& req) {
  auto lifecycle = lifecycle_for(req.action);
  std::string name(config::action_name(req.action));
  auto it = config_->domains.find(s.domain);
  std::string refusal;
  if (!lifecycle) {
    refusal = name + " is not a lifecycle action";
  } else if (s.readonly) {
    refusal = fmt::format("{} is not allowed: this key has read-only access to {}", name, s.domain);
  } else if (it == config_->domains.end() || !it->second.allows(req.action)) {
    refusal = fmt::format("{} is not allowed for {}", name, s.domain);
  }
  if (!refusal.empty()) {
    audit(s, "action", {{"action", name}, {"result", "error"}, {"reason", refusal}});
    return send_answer(s.id, ipc::ActionAns{false, refusal});
  }
  // The Xen toolstack may take seconds (xl create); the answer goes out when it is done, and
  // only if the session is still there.
  AuditEvent record{"action", s.remote, s.domain, s.fingerprint, {{"action", name}}};
  std::string ok_text = done_text(s.domain, *lifecycle);
  uint64_t id = s.id;
  // Whatever the domain does next is this action's doing: an earlier reboot's window ends.
  end_reboot_window(s.domain);
  if (*lifecycle == xen::Lifecycle::reboot) expect_reboot(s.domain);
  hypervisor_->act_async(s.domain, *lifecycle, [this, id, record, ok_text, domain = s.domain,
                                                reboot = *lifecycle == xen::Lifecycle::reboot](Result<void> done) mutable {
    if (!done && reboot) end_reboot_window(domain);
    record.extra.emplace_back("result", done ? "ok" : "error");
    if (!done) record.extra.emplace_back("reason", done.error().message);
    audit_.write(record);
    send_answer(id, ipc::ActionAns{done.has_value(), done ? ok_text : done.error().message});
  });
}

void Broker::send_answer(uint64_t id, const ipc::Message& answer) {
  auto it = sessions_.find(id);
  if (it == sessions_.end() || !it->second.ipc) return;
  if (auto sent = ipc::send(it->second.ipc.get(), answer); !sent) cut_off(it->second, sent.error().message);
}

ipc::Message Broker::answer_attach(Session& s, UniqueFd& pass) {
  auto it = config_->domains.find(s.domain);
  if (it == config_->domains.end() || !it->second.allows(config::Action::console))
    return ipc::AttachAns{false, fmt::format("console is not allowed for {}", s.domain)};
  auto status = hypervisor_->status(s.domain);
  if (!status) return ipc::AttachAns{false, status.error().message};
  // While shutting down (a reboot, say) the hub still has the console and follows the domain.
  if (status->state != xen::DomainState::running && status->state != xen::DomainState::shutting_down)
    return ipc::AttachAns{false, fmt::format("{} is not running ({})", s.domain, xen::state_name(status->state))};
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    return ipc::AttachAns{false, "cannot attach: out of resources"};
  UniqueFd hub_end(pair[0]);
  pass.reset(pair[1]);
  auto hub = hubs_.find(s.domain);
  if (hub == hubs_.end()) return ipc::AttachAns{false, "no console hub"};
  // Audit with copies: the session record may be gone by the time the viewer detaches.
  AuditEvent detach{"console_detach", s.remote, s.domain, s.fingerprint, {}};
  hub->second->attach(std::move(hub_end), ViewerInfo{s.key_label, s.readonly},
                      [this, detach] { audit_.write(detach); });
  audit(s, "console_attach", {{"readonly", s.readonly ? "yes" : "no"}});
  return ipc::AttachAns{true, ""};
}

ipc::Message Broker::answer_log(Session& s, const ipc::LogReq& req) {
  auto hub = hubs_.find(s.domain);
  if (hub == hubs_.end()) return ipc::LogAns{false, "no console log for " + s.domain};
  unsigned lines = std::clamp<uint32_t>(req.lines, 1, 10000);
  auto text = hub->second->log().tail(lines, kMaxLogAnswer);
  if (!text) return ipc::LogAns{false, text.error().message};
  return ipc::LogAns{true, std::move(*text)};
}

ipc::Message Broker::answer_who(Session& s) {
  ipc::WhoAns ans;
  auto hub = hubs_.find(s.domain);
  if (hub == hubs_.end()) return ans;
  auto viewers = hub->second->viewers();
  for (const auto& v : viewers) {
    if (ans.viewers.size() == kMaxWhoLines) {
      ans.viewers.push_back(fmt::format("... and {} more", viewers.size() - kMaxWhoLines));
      break;
    }
    ans.viewers.push_back(fmt::format("{}{}, since {}", printable(v.label, 80),
                                      v.readonly ? " (read-only)" : "", utc_clock_time(v.since)));
  }
  return ans;
}

ipc::Message Broker::answer_sysrq(Session& s, const ipc::SysrqReq& req) {
  std::string what = req.key == 0 ? "nmi" : fmt::format("sysrq {}", static_cast<char>(req.key));
  bool valid_key = req.key == 0 || config::valid_sysrq_key(static_cast<char>(req.key));
  auto it = config_->domains.find(s.domain);
  std::string refusal;
  if (!valid_key) refusal = "not a SysRq key";
  else if (s.readonly) refusal = fmt::format("{} is not allowed: this key has read-only access to {}", what, s.domain);
  else if (it == config_->domains.end() || !it->second.allows(config::Action::sysrq))
    refusal = fmt::format("sysrq is not allowed for {}", s.domain);
  if (!refusal.empty()) {
    audit(s, "action", {{"action", what}, {"result", "error"}, {"reason", refusal}});
    return ipc::ActionAns{false, refusal};
  }
  auto done = hypervisor_->send_sysrq(s.domain, static_cast<char>(req.key));
  if (!done) {
    audit(s, "action", {{"action", what}, {"result", "error"}, {"reason", done.error().message}});
    return ipc::ActionAns{false, done.error().message};
  }
  audit(s, "action", {{"action", what}, {"result", "ok"}});
  return ipc::ActionAns{true, fmt::format("{}: {} sent", s.domain, what)};
}

}  // namespace xcg::gateway
