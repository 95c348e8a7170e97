// The console hubs of the domains served, one per domain, kept in step with the hypervisor:
// a hub follows its domain's console through starts, reboots (a new domid on Xen) and stops,
// and tells its viewers what happened in one line each time. Domains come and go with reloads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/event_loop.h"
#include "config/config.h"
#include "gateway/console/console_hub.h"
#include "xen/hypervisor.h"

namespace xcg::gateway {

xen::DomainSpec domain_spec(const config::Domain& d);

class HubDirectory {
 public:
  struct Timing {
    // How long a domain that went down to reboot may take to come back before viewers are
    // told it is down. Building a domain takes seconds on Xen (tens under emulation).
    std::chrono::milliseconds reboot_window = std::chrono::seconds(60);
    // A removed domain's hub stays until its revoked sessions have had the time to tell their
    // customers why: a viewer whose console closed first would end without the line.
    std::chrono::milliseconds close_grace = std::chrono::milliseconds(500);
  };

  // Opens a hub for each domain the hypervisor serves and follows its console changes.
  // `console` is start-up's: every hub has the same, also those of domains a reload adds.
  HubDirectory(EventLoop& loop, xen::Hypervisor& hypervisor, config::ConsoleSettings console, Timing timing);
  HubDirectory(EventLoop& loop, xen::Hypervisor& hypervisor, config::ConsoleSettings console)
      : HubDirectory(loop, hypervisor, std::move(console), Timing{}) {}
  HubDirectory(const HubDirectory&) = delete;
  HubDirectory& operator=(const HubDirectory&) = delete;

  ConsoleHub* find(const std::string& domain);
  const ConsoleHub* find(const std::string& domain) const;
  size_t size() const { return hubs_.size(); }
  // Viewers attached to the domains' consoles, and the console bytes relayed (the metrics).
  size_t viewer_count() const;
  const HubTraffic& traffic() const { return traffic_; }

  // A domain new in the config: its hub, then the hypervisor follows it.
  Result<void> add_domain(const config::Domain& d);
  // A domain gone from the config (its sessions have just been revoked).
  void remove_domain(const std::string& domain);

  // Follows the domain's state: attaches the hub to its console, tells viewers what happened.
  void sync(const std::string& domain, bool announce = true);
  // Told what becomes of each domain: whether it runs, each time its state is looked at, and
  // when a reload removes it. On a node of a fleet, the registry follows it. It is told at
  // once about every domain served.
  enum class Presence { running, not_running, removed };
  using PresenceListener = std::function<void(const std::string& domain, Presence presence)>;
  void set_presence_listener(PresenceListener listener);

  // The domain is about to migrate away, or left this host (Xen): its viewers are told by the
  // broker, not that it shut off.
  void leave_quietly(const std::string& domain);
  // An action is under way: whatever the domain does next is its doing.
  void action_started(const std::string& domain, xen::Lifecycle action);
  void action_failed(const std::string& domain, xen::Lifecycle action);

 private:
  void open_hub(const std::string& domain);
  void expect_reboot(const std::string& domain);
  bool reboot_expected(const std::string& domain) const;
  void end_reboot_window(const std::string& domain);
  void announce_stop(const std::string& domain, ConsoleHub& hub, const xen::DomainStatus& status);
  void follow_console(const std::string& domain, ConsoleHub& hub, const xen::DomainStatus& status,
                      bool announce);

  struct RebootWindow {
    std::chrono::steady_clock::time_point until;
    EventLoop::Timer timer;
  };
  struct ClosingHub {
    std::unique_ptr<ConsoleHub> hub;
    EventLoop::Timer timer;
  };

  void tell_presence(const std::string& domain, bool running);

  EventLoop& loop_;
  xen::Hypervisor& hypervisor_;
  PresenceListener presence_listener_;
  config::ConsoleSettings console_;
  Timing timing_;
  HubTraffic traffic_;  // before the hubs, which count into it
  std::map<std::string, std::unique_ptr<ConsoleHub>> hubs_;
  std::map<uint64_t, ClosingHub> closing_hubs_;
  uint64_t next_closing_hub_ = 1;
  std::map<std::string, std::optional<uint32_t>> last_domid_;
  std::map<std::string, RebootWindow> reboot_windows_;
  std::string adding_domain_;  // while the hypervisor is told of it: its notices are quiet
};

}  // namespace xcg::gateway
