// Reloading the config (SIGHUP, a file change, `xcg ctl reload`): the new config applies to
// the sessions already logged in (reload_plan.h says how) and to the domains served.
#include <signal.h>

#include <set>

#include <fmt/format.h>

#include "base/log.h"
#include "base/sd_notify.h"
#include "gateway/broker/broker.h"
#include "gateway/broker/reload_plan.h"

namespace xcg::gateway {
namespace {

// "added domain web3", "added domains web3, web4"
std::string named_domains(std::string_view done, const std::vector<std::string>& names) {
  std::string text = fmt::format("{} domain{} ", done, names.size() == 1 ? "" : "s");
  for (size_t i = 0; i < names.size(); ++i) text += (i ? ", " : "") + names[i];
  return text;
}

}  // namespace

Broker::ReloadResult Broker::reload(std::string_view trigger) {
  (void)sd_notify::reloading();  // best effort, like every sd_notify call
  auto result = apply_config(trigger);
  // Followed again even when the config was refused: a directory may have been created or replaced.
  if (config_watch_) config_watch_->follow(*config_);
  (void)sd_notify::ready(sd_notify::one_line(result.text));
  return result;
}

Broker::ReloadResult Broker::apply_config(std::string_view trigger) {
  std::shared_ptr<const config::Config> fresh;
  try {
    fresh = config::load_config(config_->path);
  } catch (const config::ConfigError& e) {
    log::error("reload ({}): {} is not valid; still running the previous config:", trigger, config_->path);
    for (const auto& p : e.problems()) log::error("  {}", p.str());
    ++counters_.reloads_failed;
    return {false, e.what()};
  } catch (const std::exception& e) {
    log::error("reload ({}): {}; still running the previous config", trigger, e.what());
    ++counters_.reloads_failed;
    return {false, e.what()};
  }
  auto restart_only = restart_only_changes(*config_, *fresh);
  if (file_config_) file_config_ = fresh;
  config_ = effective(fresh);
  take_session_limits();
  spares_->set_target(config_->limits.spare_sessions);
  load_web_tls();
  unsigned revoked = apply_rights();
  std::string text = fmt::format("reloaded {} ({}): {} domains, {} sessions ended", config_->path, trigger,
                                 config_->domains.size(), revoked);
  text += apply_domain_changes();
  for (const auto& c : restart_only) text += fmt::format("; {} changed: restart xcg to apply it", c);
  log::info("{}", text);
  ++counters_.reloads_ok;
  return {true, text};
}

// Returns how many sessions were revoked.
unsigned Broker::apply_rights(const DomainKeys* only) {
  unsigned revoked = 0;
  for (auto& [id, s] : sessions_) {
    if (!s.authorized || s.revoked || (only != nullptr && !only->contains(s.domain))) continue;
    RightsChange change = rights_after_reload(*config_, s);
    if (change.revoke) {
      revoke(s, fmt::format("access to {} was revoked", s.domain));
      ++revoked;
      continue;
    }
    narrow_rights(s, change);
  }
  return revoked;
}

// Serves the config's domains: those new in it are added, those gone from it removed (after
// their sessions were revoked). Compared with what is served rather than with the previous
// config, so that a domain whose adding failed is tried again on the next reload. Returns
// what was done, as "; ..." parts of the reload's result.
std::string Broker::apply_domain_changes() {
  std::vector<std::string> names = hypervisor_->domains();
  std::set<std::string> served(names.begin(), names.end());
  std::vector<std::string> added, removed;
  std::string failures;
  for (const auto& name : served) {
    if (config_->domains.contains(name)) continue;
    hubs_->remove_domain(name);
    removed.push_back(name);
  }
  for (const auto& [name, d] : config_->domains) {
    if (served.contains(name)) continue;
    if (auto r = hubs_->add_domain(d); !r) {
      log::error("reload: cannot add domain {}: {}", name, r.error().message);
      failures += fmt::format("; cannot add domain {}: {}", name, r.error().message);
      continue;
    }
    added.push_back(name);
  }
  std::string text;
  if (!added.empty()) text += "; " + named_domains("added", added);
  if (!removed.empty()) text += "; " + named_domains("removed", removed);
  return text + failures;
}

// A domain without `console` loses its viewers (the session and its menu stay); a key made
// read-only stops typing at once.
// The session is told too, so that its menu stops offering what it may no longer do.
void Broker::narrow_rights(SessionRecord& s, const RightsChange& change) {
  ConsoleHub* hub = hubs_->find(s.domain);
  if (change.withdraw_console) {
    std::string text = fmt::format("console access to {} was withdrawn", s.domain);
    if (hub != nullptr && hub->detach_session(s.id, text + "; detached") > 0)
      audit(s, "rights_narrowed", {{"change", "console withdrawn"}});
    send(s, ipc::Narrowed{.console_withdrawn = true, .text = text});
  }
  if (!change.make_readonly) return;
  s.readonly = true;
  std::string text = fmt::format("your access to {} is now read-only", s.domain);
  if (hub != nullptr) hub->make_readonly(s.id, text);
  audit(s, "rights_narrowed", {{"change", "read-only"}});
  send(s, ipc::Narrowed{.readonly = true, .text = text});
}

// Told first, so that the customer learns why; killed kRevokeGrace later if still there.
void Broker::revoke(SessionRecord& s, const std::string& text, bool handover) {
  s.revoked = true;
  audit(s, "session_revoked", {{"reason", text}});
  if (s.ipc) (void)ipc::send(s.ipc.get(), ipc::Revoke{text, handover});  // best effort: the kill follows
  s.revoke_timer = loop_.timer(kRevokeGrace, fmt::format("session {} revocation", s.id),
                               [pid = s.pid] { ::kill(pid, SIGKILL); });
}

}  // namespace xcg::gateway
