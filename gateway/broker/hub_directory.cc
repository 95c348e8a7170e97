#include "gateway/broker/hub_directory.h"

#include <fmt/format.h>

#include "base/log.h"

namespace xcg::gateway {

xen::DomainSpec domain_spec(const config::Domain& d) {
  auto console = d.xen_console == config::XenConsole::pv       ? xen::ConsoleType::pv
                 : d.xen_console == config::XenConsole::serial ? xen::ConsoleType::serial
                                                               : xen::ConsoleType::automatic;
  return {d.name, d.memory_mib, d.vcpus, d.config_file, console};
}

HubDirectory::HubDirectory(EventLoop& loop, xen::Hypervisor& hypervisor, config::ConsoleSettings console,
                           Timing timing)
    : loop_(loop), hypervisor_(hypervisor), console_(std::move(console)), timing_(timing) {
  for (const auto& name : hypervisor_.domains()) {
    open_hub(name);
    sync(name, /*announce=*/false);  // running before we came is no news to anyone
  }
  hypervisor_.set_console_changed(
      [this](const std::string& domain) { sync(domain, /*announce=*/domain != adding_domain_); });
}

ConsoleHub* HubDirectory::find(const std::string& domain) {
  auto it = hubs_.find(domain);
  return it == hubs_.end() ? nullptr : it->second.get();
}

const ConsoleHub* HubDirectory::find(const std::string& domain) const {
  auto it = hubs_.find(domain);
  return it == hubs_.end() ? nullptr : it->second.get();
}

size_t HubDirectory::viewer_count() const {
  size_t n = 0;
  for (const auto& [domain, hub] : hubs_) n += hub->viewer_count();
  return n;
}

void HubDirectory::open_hub(const std::string& domain) {
  HubSettings settings{console_.scrollback_bytes, console_.replay_bytes,
                       console_.log_dir.empty() ? "" : console_.log_dir + "/" + domain + ".log",
                       console_.log_max_bytes, &traffic_};
  hubs_.emplace(domain, std::make_unique<ConsoleHub>(loop_, domain, std::move(settings)));
}

// Its hub comes first, so that the hypervisor's first notice (the sim starting the guest, Xen
// finding it running) finds the hub there.
Result<void> HubDirectory::add_domain(const config::Domain& d) {
  // Removed and added again before its old hub closed: one writer per console log.
  std::erase_if(closing_hubs_, [&](const auto& entry) { return entry.second.hub->domain() == d.name; });
  open_hub(d.name);
  // Running before it was added (Xen) or started by the adding (sim autostart): like the
  // domains found at start-up, no news for anyone.
  adding_domain_ = d.name;
  auto added = hypervisor_.add_domain(domain_spec(d));
  adding_domain_.clear();
  if (!added) {
    hubs_.erase(d.name);
    return added;
  }
  sync(d.name, /*announce=*/false);
  return {};
}

// The console (and on Xen its lock) is let go at once and the guest's last output logged;
// the hub itself closes after close_grace. The console log file stays on disk.
void HubDirectory::remove_domain(const std::string& domain) {
  if (auto it = hubs_.find(domain); it != hubs_.end()) {
    it->second->set_console({});
    uint64_t key = next_closing_hub_++;
    auto timer =
        loop_.timer(timing_.close_grace, "close hub " + domain, [this, key] { closing_hubs_.erase(key); });
    closing_hubs_.emplace(key, ClosingHub{std::move(it->second), std::move(timer)});
    hubs_.erase(it);
  }
  last_domid_.erase(domain);
  end_reboot_window(domain);
  if (presence_listener_) presence_listener_(domain, Presence::removed);
  if (auto removed = hypervisor_.remove_domain(domain); !removed)
    log::warn("removing {}: {}", domain, removed.error().message);
}

void HubDirectory::set_presence_listener(PresenceListener listener) {
  presence_listener_ = std::move(listener);
  for (const auto& [domain, hub] : hubs_) {
    auto status = hypervisor_.status(domain);
    if (status) tell_presence(domain, status->state == xen::DomainState::running);
  }
}

void HubDirectory::tell_presence(const std::string& domain, bool running) {
  if (presence_listener_) presence_listener_(domain, running ? Presence::running : Presence::not_running);
}

void HubDirectory::action_started(const std::string& domain, xen::Lifecycle action) {
  end_reboot_window(domain);
  if (action == xen::Lifecycle::reboot) expect_reboot(domain);
}

void HubDirectory::leave_quietly(const std::string& domain) {
  last_domid_[domain].reset();  // announce_stop says nothing of a console it never saw
  end_reboot_window(domain);
}

void HubDirectory::action_failed(const std::string& domain, xen::Lifecycle action) {
  if (action == xen::Lifecycle::reboot) end_reboot_window(domain);
}

// One window per reboot: seen again (Xen reports the reason for as long as the old domain is
// there), it does not slide or reopen, so a domain that never comes back is announced once it
// closes. It is forgotten when the domain runs again or the customer acts on it.
void HubDirectory::expect_reboot(const std::string& domain) {
  if (reboot_windows_.contains(domain)) return;
  auto timer = loop_.timer(timing_.reboot_window + std::chrono::milliseconds(10), "reboot window " + domain,
                           [this, domain] { sync(domain); });
  reboot_windows_[domain] =
      RebootWindow{std::chrono::steady_clock::now() + timing_.reboot_window, std::move(timer)};
}

bool HubDirectory::reboot_expected(const std::string& domain) const {
  auto it = reboot_windows_.find(domain);
  return it != reboot_windows_.end() && std::chrono::steady_clock::now() < it->second.until;
}

void HubDirectory::end_reboot_window(const std::string& domain) { reboot_windows_.erase(domain); }

void HubDirectory::sync(const std::string& domain, bool announce) {
  ConsoleHub* hub = find(domain);
  if (hub == nullptr) return;
  auto status = hypervisor_.status(domain);
  if (!status) return log::warn("status of {}: {}", domain, status.error().message);
  tell_presence(domain, status->state == xen::DomainState::running);
  if (status->state != xen::DomainState::running) return announce_stop(domain, *hub, *status);
  end_reboot_window(domain);
  follow_console(domain, *hub, *status, announce);
}

// On Xen a reboot is the old domain going away and a new one coming: say nothing until we
// know which, so that viewers get one line ("rebooted, new domid 12"), not two.
void HubDirectory::announce_stop(const std::string& domain, ConsoleHub& hub,
                                 const xen::DomainStatus& status) {
  // Being saved or migrated: it resumes (xl save -c) on the same console, or leaves this host,
  // which the broker tells its viewers. Either way a stop notice now would be wrong.
  if (status.suspended) return;
  auto& last = last_domid_[domain];
  hub.set_console({});
  if (status.rebooting) expect_reboot(domain);
  if (last && reboot_expected(domain)) return;
  if (last) hub.notice(fmt::format("{} is {}", domain, xen::state_name(status.state)));
  last.reset();
}

void HubDirectory::follow_console(const std::string& domain, ConsoleHub& hub, const xen::DomainStatus& status,
                                  bool announce) {
  auto& last = last_domid_[domain];
  if (last == status.domid && hub.has_console()) return;
  auto console = hypervisor_.open_console(domain);
  if (!console) return log::warn("console of {}: {}", domain, console.error().message);
  if (last != status.domid) {
    // Viewers stay attached; one line tells them what happened, then the new boot follows.
    uint32_t domid = status.domid.value_or(0);
    hub.mark_boot();
    if (announce)
      hub.notice(last ? fmt::format("{} rebooted, new domid {}", domain, domid)
                      : fmt::format("{} started, domid {}", domain, domid));
  }
  hub.set_console(std::move(*console));
  last = status.domid;
}

}  // namespace xcg::gateway
