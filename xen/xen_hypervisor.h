// The real Xen: domains found by name in xenstore, their state from libxenctrl, their consoles
// the ptys xenconsoled names in xenstore, and lifecycle actions through `xl`.
//
// A domain is followed by name: @introduceDomain, @releaseDomain and the tty node of each
// known domain are watched (the xenstore descriptor sits in the event loop), and whenever a
// domain's domid, state or tty changes, console-changed listeners hear about it. A reboot is a
// new domid with a new pty under the same name. A domain seen suspended (`xl save`, `xl
// migrate`) that is then gone, or whose name is then on another domid, has left this host:
// domain-left listeners hear of it first. Which domids carry a served name is read from
// every domain's name node only when a domain comes or goes (the two watches), after an action
// and when a domain is added; a status request reads the name nodes of its own domids alone,
// so that a domain renamed away (`on_crash = "preserve"`) stops counting at once.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/event_loop.h"
#include "xen/console_lock.h"
#include "xen/console_tty.h"
#include "xen/hypervisor.h"
#include "xen/toolstack.h"
#include "xen/xen_ctrl.h"
#include "xen/xen_store.h"

namespace xcg::xen {

struct XenOptions {
  std::string toolstack = "/usr/sbin/xl";
  std::chrono::milliseconds timeout{30'000};  // per toolstack run
  std::string lock_dir = "/var/lock";         // Debian's XEN_LOCK_DIR
  // How often to try again for a console whose lock someone else (`xl console`) holds.
  std::chrono::milliseconds lock_retry{5'000};
};

class XenHypervisor final : public Hypervisor {
 public:
  // Connects to Xen: libxenctrl, xenstored, the toolstack. Throws std::runtime_error with one
  // line naming everything that is missing.
  static std::unique_ptr<XenHypervisor> open(EventLoop& loop, std::vector<DomainSpec> domains,
                                             XenOptions options);
  // With the connections given (tests pass a fake xenstored's and a fake domain-info source).
  // Throws std::invalid_argument on an empty or duplicate domain name, std::runtime_error when
  // the watches can't be set.
  XenHypervisor(EventLoop& loop, std::vector<DomainSpec> domains, XenOptions options, XenStore store,
                std::unique_ptr<DomainInfoSource> info);
  ~XenHypervisor() override;

  std::vector<std::string> domains() const override;
  // Follows the new name as the constructor does its domains (a domain already running under
  // it is announced at once); a removed domain's tty watches and console lock are let go.
  Result<void> add_domain(DomainSpec spec) override;
  Result<void> remove_domain(const std::string& domain) override;
  Result<DomainStatus> status(const std::string& domain) const override;
  // Preconditions are checked at once (`done` before returning); otherwise `done` comes from
  // the event loop when `xl` has finished (at most the timeout): `xl create` returns once the
  // domain is built, which takes seconds.
  void act_async(const std::string& domain, Lifecycle action, ActDone done) override;
  // The domain's tty, opened raw, non-blocking; xcg holds the xenconsole lock of the domain
  // from then until the domain goes away (or xcg does).
  Result<UniqueFd> open_console(const std::string& domain) override;
  // A SysRq key is a xenstore write (`done` before returning); an NMI is `xl trigger`, like
  // act_async.
  void send_sysrq(const std::string& domain, char key, ActDone done) override;

 private:
  struct Domain;
  struct Found {
    uint32_t domid;
    DomainInfo info;
  };
  // What a change is judged by.
  struct Seen {
    std::optional<uint32_t> domid;
    DomainState state = DomainState::shut_off;
    std::string tty;
    bool suspended = false;
    bool operator==(const Seen&) const = default;
  };

  using Names = std::map<std::string, std::vector<uint32_t>>;  // served name -> domids

  Domain* find(const std::string& name) const;
  Result<void> insert(DomainSpec spec);
  Result<Names> scan() const;
  Result<std::vector<uint32_t>> domids_named(const std::string& name) const;
  Result<std::optional<Found>> locate(const std::string& name) const;
  Result<Found> locate_running(const std::string& name) const;  // wrong_state unless running
  Result<std::optional<Found>> pick(const std::vector<uint32_t>& domids) const;
  std::vector<std::string> tty_paths(const Domain& d, const Found& found) const;
  struct TtyNode {
    std::string node;  // the xenstore path that named it
    std::string tty;   // empty while xenconsoled has not written it yet
  };
  Result<TtyNode> read_tty_node(const std::vector<std::string>& paths) const;
  Result<std::string> read_tty(const std::vector<std::string>& paths) const;
  Result<void> check_tty_node(const TtyNode& tty, const std::string& domain, uint32_t domid) const;
  std::chrono::seconds uptime(uint32_t domid) const;

  Result<std::vector<std::string>> toolstack_args(const Domain& d, Lifecycle action) const;
  Result<void> finish(const std::string& name, Lifecycle action, Result<void> ran);
  Result<uint32_t> sysrq_target(const std::string& domain, char key) const;
  Result<void> write_sysrq(uint32_t domid, char key);

  void on_watch_event();
  // Tells listeners what changed; with `rescan`, first reads every domain's name afresh.
  void refresh(bool rescan = true);
  Result<Seen> observe(Domain& d);
  static bool left_host(Domain& d, const Seen& now);
  void watch_ttys(Domain& d, std::vector<std::string> paths);
  void retry_console_later(Domain& d);

  EventLoop& loop_;
  XenOptions options_;
  XenStore store_;
  std::unique_ptr<DomainInfoSource> info_;
  Toolstack toolstack_;
  std::map<std::string, std::unique_ptr<Domain>> domains_;
  // The last scan; nullopt until one succeeds, and again once the watches are lost.
  std::optional<Names> names_;
  // Last: it ends first, before store_'s descriptor closes and before what it calls back into.
  EventLoop::Watch store_watch_;
};

}  // namespace xcg::xen
