// Simulated hypervisor: each domain is a real process (the guest) on a real pty.
//
// With console_dir set there are no guest processes: each domain is a tty that exists already.
//
// A guest runs in its own session with the pty slave as its controlling terminal (raw mode,
// 80x24, as xenconsoled sets it up). Exits are seen through a pidfd in the event loop, so no
// SIGCHLD handler is needed and nothing else in the process is disturbed.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/event_loop.h"
#include "xen/hypervisor.h"
#include "xen/toolstack.h"

namespace xcg::xen {

struct SimOptions {
  // argv of the guest; the domain name and domid are passed in the environment as
  // XCG_DOMAIN and XCG_DOMID. Empty: `<self_exe> guest` (the built-in fake guest).
  // guest_command[0] is a path: there is no PATH search.
  std::vector<std::string> guest_command;
  // How long a shutdown or reboot waits for the guest before SIGKILL.
  std::chrono::milliseconds shutdown_grace{5000};
  std::string self_exe = "/proc/self/exe";
  // Start every domain in the constructor (before any console-changed listener can be set),
  // and each one add_domain adds later.
  bool autostart = false;
  // A stand-in for `xl` (tests): when set, lifecycle actions and NMIs first run it as the Xen
  // backend runs xl (the same Toolstack, argv and timeout), and act only if it exits 0.
  // Absolute, executed without a shell. Empty: they act at once.
  std::string toolstack;
  std::chrono::milliseconds toolstack_timeout{30'000};
  // Set: no guest is run. Every domain is console only: running from the start, its console
  // the existing tty <console_dir>/<name>, opened on each open_console exactly as the Xen
  // backend opens xenconsoled's pty (open_raw_tty); lifecycle actions, SysRq and migration are
  // refused. For a guest someone else runs (a benchmark's, a test's).
  std::string console_dir;
};

class SimHypervisor final : public Hypervisor {
 public:
  // Throws std::invalid_argument on an empty or duplicate domain name, std::runtime_error when
  // the toolstack is set but cannot be executed.
  SimHypervisor(EventLoop& loop, std::vector<DomainSpec> domains, SimOptions options);
  ~SimHypervisor() override;  // kills every guest

  std::vector<std::string> domains() const override;
  Result<void> add_domain(DomainSpec spec) override;
  Result<void> remove_domain(const std::string& domain) override;  // kills the guest at once
  Result<DomainStatus> status(const std::string& domain) const override;
  // The action at once, without the toolstack.
  Result<void> act(const std::string& domain, Lifecycle action);
  void act_async(const std::string& domain, Lifecycle action, ActDone done) override;
  Result<UniqueFd> open_console(const std::string& domain) override;
  void send_sysrq(const std::string& domain, char key, ActDone done) override;
  // Kills the guest at once: wrong_state unless it runs.
  Result<void> migrate_out(const std::string& domain) override;

 private:
  struct Domain;
  Domain* find(const std::string& name) const;
  Result<Domain*> insert(DomainSpec spec);
  void start(Domain& d);
  void kill_now(Domain& d);
  Result<void> spawn(Domain& d);
  Result<void> stop(Domain& d, Lifecycle action);
  Result<void> destroy(Domain& d);
  void on_guest_exit(Domain& d);
  void forget_process(Domain& d);
  Result<std::vector<std::string>> toolstack_args(const Domain& d, Lifecycle action) const;
  Result<void> signal_sysrq(const std::string& domain, char key);
  bool console_only() const { return !options_.console_dir.empty(); }
  Result<void> refuse_console_only(const std::string& domain, std::string_view what) const;
  Result<UniqueFd> open_console_tty(const std::string& domain) const;

  std::unique_ptr<Toolstack> toolstack_;  // null: no toolstack, act at once

  EventLoop& loop_;
  SimOptions options_;
  std::map<std::string, std::unique_ptr<Domain>> domains_;
  uint32_t next_domid_ = 1;
};

// The built-in fake guest (`xcg guest`): boot banner, login prompt, a tiny shell.
int run_fake_guest();

}  // namespace xcg::xen
