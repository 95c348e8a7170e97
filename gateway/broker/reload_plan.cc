#include "gateway/broker/reload_plan.h"

#include <tuple>

#include <fmt/format.h>

namespace xcg::gateway {
namespace {

// What the hypervisor was told about a domain at start-up or when it was added.
std::vector<std::string> hypervisor_fields_changed(const config::Domain& a, const config::Domain& b,
                                                   config::HypervisorKind kind) {
  std::vector<std::string> changed;
  if (kind == config::HypervisorKind::sim) {
    if (a.memory_mib != b.memory_mib) changed.push_back("memory");
    if (a.vcpus != b.vcpus) changed.push_back("vcpus");
  } else {
    if (a.config_file != b.config_file) changed.push_back("config_file");
    if (a.xen_console != b.xen_console) changed.push_back("console");
  }
  return changed;
}

std::string listen_text(const std::vector<config::ListenAddress>& listen) {
  std::string t;
  for (const auto& l : listen) t += l.text + " ";
  return t;
}

// The web listeners are bound at start-up like the SSH ones; the rest of `web:` (the TLS
// pair, public_url, link_ttl, trusted_proxies) applies to the next connection.
void web_changes(const config::Config& a, const config::Config& b, std::vector<std::string>& changed) {
  static const config::WebSettings none;
  const auto& wa = a.web ? *a.web : none;
  const auto& wb = b.web ? *b.web : none;
  if (a.web.has_value() != b.web.has_value() || listen_text(wa.listen) != listen_text(wb.listen) ||
      listen_text(wa.plain_listen) != listen_text(wb.plain_listen))
    changed.push_back("web listen");
  if (wa.panel_secret_file != wb.panel_secret_file) changed.push_back("web panel_secret_file");
}

void top_level_changes(const config::Config& a, const config::Config& b, std::vector<std::string>& changed) {
  if (listen_text(a.listen) != listen_text(b.listen)) changed.push_back("listen");
  if (a.host_keys != b.host_keys) changed.push_back("host_keys");
  if (a.hypervisor != b.hypervisor) changed.push_back("hypervisor");
  if (a.audit_log != b.audit_log) changed.push_back("audit_log");
  if (a.run_as != b.run_as) changed.push_back("run_as");
  if (a.chroot_dir != b.chroot_dir) changed.push_back("chroot_dir");
}

// Hubs keep the settings they were made with; only domains added from now on get new ones.
bool console_changed(const config::ConsoleSettings& a, const config::ConsoleSettings& b) {
  return std::tie(a.scrollback_bytes, a.replay_bytes, a.log_dir, a.log_max_bytes) !=
         std::tie(b.scrollback_bytes, b.replay_bytes, b.log_dir, b.log_max_bytes);
}

// The backend's own settings; `a` is what runs (a changed `hypervisor` is reported apart).
void backend_changes(const config::Config& a, const config::Config& b, std::vector<std::string>& changed) {
  if (a.hypervisor == config::HypervisorKind::sim &&
      std::tie(a.sim.guest_command, a.sim.autostart, a.sim.shutdown_grace_ms, a.sim.console_dir) !=
          std::tie(b.sim.guest_command, b.sim.autostart, b.sim.shutdown_grace_ms, b.sim.console_dir))
    changed.push_back("sim");
  if (a.hypervisor == config::HypervisorKind::xen &&
      std::tie(a.xen.toolstack, a.xen.timeout_s, a.xen.lock_dir) !=
          std::tie(b.xen.toolstack, b.xen.timeout_s, b.xen.lock_dir))
    changed.push_back("xen");
}

// A web session is the console: without it, or without its domain, it ends. A link minted by
// an SSH key lives on that key's rights, as the key's own sessions do.
RightsChange web_rights_after_reload(const config::Config& fresh, const SessionRecord& s) {
  auto d = fresh.domains.find(s.domain);
  if (d == fresh.domains.end() || !d->second.allows(config::Action::console)) return {.revoke = true};
  if (s.key_blob.empty()) return {};
  const config::Domain* owner = fresh.domain_for_key(s.key_blob);
  if (owner == nullptr || owner->name != s.domain) return {.revoke = true};
  const config::DomainKey* key = owner->key_for(s.key_blob);
  return {.make_readonly = !s.readonly && key != nullptr && key->readonly};
}

}  // namespace

std::vector<std::string> restart_only_changes(const config::Config& a, const config::Config& b) {
  std::vector<std::string> changed;
  top_level_changes(a, b, changed);
  if (console_changed(a.console, b.console)) changed.push_back("console");
  backend_changes(a, b, changed);
  web_changes(a, b, changed);
  if (a.cluster != b.cluster) changed.push_back("cluster");
  if (a.metrics.has_value() != b.metrics.has_value() ||
      (a.metrics && listen_text(a.metrics->listen) != listen_text(b.metrics->listen)))
    changed.push_back("metrics listen");
  for (const auto& [name, d] : b.domains) {
    auto before = a.domains.find(name);
    if (before == a.domains.end()) continue;  // new: added as it is
    for (const auto& field : hypervisor_fields_changed(before->second, d, a.hypervisor))
      changed.push_back(fmt::format("domain {} {}", name, field));
  }
  return changed;
}

RightsChange rights_after_reload(const config::Config& fresh, const SessionRecord& s) {
  if (s.kind == SessionKind::web) return web_rights_after_reload(fresh, s);
  // Through a front: the node no longer trusting that front ends it, whatever the key map says.
  if (!s.front_key_blob.empty() && fresh.front_for_key(s.front_key_blob) == nullptr) return {.revoke = true};
  // A front's browser with no key behind it: the console as long as the domain allows it.
  if (s.key_blob.empty()) return web_rights_after_reload(fresh, s);
  const config::Domain* d = fresh.domain_for_key(s.key_blob);
  if (d == nullptr || d->name != s.domain) return {.revoke = true};
  const config::DomainKey* key = d->key_for(s.key_blob);
  return {.withdraw_console = !d->allows(config::Action::console),
          .make_readonly = !s.readonly && key != nullptr && key->readonly};
}

}  // namespace xcg::gateway
