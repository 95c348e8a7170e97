// What the gateway needs from a hypervisor: state, lifecycle actions, and the console.
//
// Implementations: SimHypervisor (fake domains on real ptys) and XenHypervisor.
// All calls are made from the broker's event loop thread and must not block: whatever may take
// long (every toolstack run, such as `xl create` or `xl trigger nmi`) is asynchronous, with a
// callback from the event loop. What remains synchronous (status, open_console, xenstore
// reads and writes) answers in microseconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace xcg::xen {

enum class DomainState { running, shutting_down, shut_off, crashed };
std::string_view state_name(DomainState s);  // "running", "shutting down", "shut off", "crashed"

enum class Lifecycle { start, shutdown, reboot, destroy };
std::string_view lifecycle_name(Lifecycle a);

// Which console of a Xen domain: the PV console (console/tty), the emulated serial port of an
// HVM guest (serial/0/tty), or auto: serial for HVM guests when there is one, else PV (as
// xenconsole).
enum class ConsoleType { automatic, pv, serial };

// A domain the gateway serves, as its config describes it; each backend uses its own fields.
struct DomainSpec {
  std::string name;
  uint64_t memory_mib = 512;                     // sim: what status reports
  unsigned vcpus = 1;                            // sim
  std::string config_file;                       // xen: for `xl create`; empty: /etc/xen/<name>.cfg
  ConsoleType console = ConsoleType::automatic;  // xen
};

struct DomainStatus {
  std::string name;
  DomainState state = DomainState::shut_off;
  std::optional<uint32_t> domid;  // set while the domain exists
  uint64_t memory_mib = 0;
  unsigned vcpus = 0;
  std::chrono::seconds uptime{0};                // zero unless running
  std::optional<std::chrono::seconds> cpu_time;  // CPU time used, where the hypervisor tells
  // Shut down in order to come back: Xen's shutdown reason "reboot". The toolstack destroys the
  // domain and builds a new one under the same name.
  bool rebooting = false;
  // Shut down with Xen's reason "suspend": `xl save` or `xl migrate` is taking its memory, and
  // then destroys it, or `xl save -c` resumes it under the same domid. Its console stays.
  bool suspended = false;
};

// "web1: running, domid 3, 512 MiB, 1 vCPU, up 0:05:12" (Xen adds ", cpu 0:00:07")
std::string format_status(const DomainStatus& s);

class Hypervisor {
 public:
  // Called (from the event loop) whenever a domain's console may have changed: it started,
  // rebooted into a new domid, stopped or crashed. Listeners re-query status/open_console.
  using ConsoleChanged = std::function<void(const std::string& domain)>;
  // Called (from the event loop) when a domain left this host while still alive elsewhere or on
  // disk: Xen saw it suspended, then gone or its name on a new domid (`xl save`, `xl migrate`).
  // Comes before the console-changed notice of the same change.
  using DomainLeft = std::function<void(const std::string& domain)>;

  virtual ~Hypervisor() = default;

  virtual std::vector<std::string> domains() const = 0;
  // The domains served change with the config (a reload). add_domain follows one more from
  // now on, as the constructor does its domains: the sim starts its guest when autostart is
  // set, Xen looks for it by name in xenstore; console-changed notices follow as usual.
  // invalid_input for an empty name or one already served.
  virtual Result<void> add_domain(DomainSpec spec) = 0;
  // Stops serving the domain: the sim kills its guest; a real Xen domain is left alone, just no
  // longer followed, and its console lock is let go. No notice follows for it. not_found for
  // a name not served.
  virtual Result<void> remove_domain(const std::string& domain) = 0;
  virtual Result<DomainStatus> status(const std::string& domain) const = 0;
  // Asks for the action; `done` gets the result once it is under way (shutdown and reboot
  // complete later; status() shows the progress), possibly before act_async returns (when it
  // is decided without a toolstack run: "web1 is not running"), else later from the event
  // loop. Errors: not_found, wrong_state ("web1 is not running"), unavailable, timeout, system
  // (the toolstack's one-line reason).
  using ActDone = std::function<void(Result<void>)>;
  virtual void act_async(const std::string& domain, Lifecycle action, ActDone done) = 0;
  // A new descriptor for the running domain's console (a pty end), non-blocking, owned by
  // the caller. wrong_state if the domain is not running; unavailable while its console can't
  // be had yet (then a console-changed notice follows when it can).
  virtual Result<UniqueFd> open_console(const std::string& domain) = 0;
  // Sends a magic SysRq key ([0-9a-z]) to the running guest, or an NMI when `key` is 0; `done`
  // as for act_async (Xen's NMI is an `xl trigger` run, so it comes later).
  // NOLINTNEXTLINE(performance-unnecessary-value-param): the interface's; overriders move `done`
  virtual void send_sysrq(const std::string& domain, char key, ActDone done) {
    (void)domain;
    (void)key;
    done(fail(Errc::unavailable, "SysRq is not supported by this hypervisor"));
  }

  // The source side of a live migration, as the simulator plays it (docs/fleet.md, "Migration"):
  // the running guest leaves this host at once and the domain is shut off here; the console
  // changes quietly (the broker tells the viewers where it went). On Xen `xl migrate` moves a
  // domain and its leaving is seen (a domain-left notice): unavailable here.
  virtual Result<void> migrate_out(const std::string& domain) {
    return fail(Errc::unavailable,
                "cannot migrate " + domain + ": migration is simulated only; use xl migrate");
  }

  void set_console_changed(ConsoleChanged cb) { console_changed_ = std::move(cb); }
  void set_domain_left(DomainLeft cb) { domain_left_ = std::move(cb); }

 protected:
  void notify_console_changed(const std::string& domain) {
    if (console_changed_) console_changed_(domain);
  }
  void notify_domain_left(const std::string& domain) {
    if (domain_left_) domain_left_(domain);
  }

 private:
  ConsoleChanged console_changed_;
  DomainLeft domain_left_;
};

}  // namespace xcg::xen
