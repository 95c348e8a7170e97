#include "xen/sim/sim_hypervisor.h"

#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "base/child.h"
#include "base/log.h"
#include "xen/console_tty.h"

namespace xcg::xen {

struct SimHypervisor::Domain {
  DomainSpec spec;
  DomainState state = DomainState::shut_off;
  pid_t pid = 0;  // non-zero while a guest process exists (until it is reaped)
  uint32_t domid = 0;
  UniqueFd master;
  UniqueFd pidfd;
  EventLoop::Clock::time_point started{};
  // What was asked of the running guest; decides what its exit means.
  std::optional<Lifecycle> pending;
  // After `pidfd`: they end before it closes, and with the Domain they refer to.
  EventLoop::Watch exit_watch;
  EventLoop::Timer kill_timer;
};

namespace {

// The guest leads its own process group, so signals reach its children too. Right after fork
// the child may not have called setsid yet; then the child alone gets the signal, which it holds
// blocked until it has reset its dispositions.
void signal_guest(pid_t pid, int sig) {
  if (::kill(-pid, sig) == 0) return;
  if (errno == ESRCH && ::kill(pid, sig) == 0) return;
  log::warn("sim: kill({}, {}): {}", pid, sigabbrev_np(sig), std::strerror(errno));
}

// Everything the child needs, prepared before fork so that the child does not allocate.
struct ExecPlan {
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::vector<char*> argv;
  std::vector<char*> envp;
};

ExecPlan make_exec_plan(const SimOptions& options, const std::string& name, uint32_t domid) {
  ExecPlan plan;
  if (options.guest_command.empty()) {
    plan.path = options.self_exe;
    plan.args = {"xcg-guest", "guest"};
  } else {
    plan.path = options.guest_command.front();
    plan.args = options.guest_command;
  }
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    if (entry.starts_with("XCG_DOMAIN=") || entry.starts_with("XCG_DOMID=")) continue;
    plan.env.emplace_back(entry);
  }
  plan.env.push_back("XCG_DOMAIN=" + name);
  plan.env.push_back(fmt::format("XCG_DOMID={}", domid));
  for (auto& a : plan.args) plan.argv.push_back(a.data());
  plan.argv.push_back(nullptr);
  for (auto& e : plan.env) plan.envp.push_back(e.data());
  plan.envp.push_back(nullptr);
  return plan;
}

// Only async-signal-safe calls from here on: the child of fork. The guest's pty becomes its
// controlling terminal and its stdin, stdout and stderr, where a failure says why.
[[noreturn]] void run_child(int slave, const ExecPlan& plan) {
  const int fds[] = {slave, slave, slave};
  ExecSpec spec{.path = plan.path.c_str(),
                .argv = plan.argv.data(),
                .envp = plan.envp.data(),
                .fds = fds,
                .fd_count = 3,
                .failure_prefix = "xcg-sim: cannot start guest: ",
                .line_end = "\r\n"};
  if (::setsid() < 0) fail_in_child(spec, "setsid", errno);
  // Simulated domains exist only for their broker: they must not outlive it, even SIGKILLed.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) fail_in_child(spec, "prctl", errno);
  if (::ioctl(slave, TIOCSCTTY, 0) < 0) fail_in_child(spec, "TIOCSCTTY", errno);
  exec_child(spec);
}

// A pty set up as xenconsoled does: raw, 80x24; the master is non-blocking.
Result<std::pair<UniqueFd, UniqueFd>> open_console_pty() {
  int master_fd = -1, slave_fd = -1;
  winsize size{};
  size.ws_row = 24;
  size.ws_col = 80;
  if (::openpty(&master_fd, &slave_fd, nullptr, nullptr, &size) < 0) return fail_errno("openpty");
  UniqueFd master(master_fd), slave(slave_fd);
  termios tio{};
  if (::tcgetattr(slave.get(), &tio) < 0) return fail_errno("tcgetattr");
  ::cfmakeraw(&tio);
  if (::tcsetattr(slave.get(), TCSANOW, &tio) < 0) return fail_errno("tcsetattr");
  if (::fcntl(master.get(), F_SETFD, FD_CLOEXEC) < 0 || ::fcntl(slave.get(), F_SETFD, FD_CLOEXEC) < 0)
    return fail_errno("fcntl FD_CLOEXEC");
  if (!set_nonblocking(master.get())) return fail_errno("fcntl O_NONBLOCK");
  return std::make_pair(std::move(master), std::move(slave));
}

// For a child we could not take charge of: kill it and reap it at once.

std::string describe_exit(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) return fmt::format("exited with status {}", info.si_status);
  const char* sig = sigabbrev_np(info.si_status);
  return fmt::format("killed by SIG{}", sig ? sig : std::to_string(info.si_status).c_str());
}

}  // namespace

SimHypervisor::SimHypervisor(EventLoop& loop, std::vector<DomainSpec> domains, SimOptions options)
    : loop_(loop), options_(std::move(options)) {
  if (!options_.toolstack.empty()) {
    if (::access(options_.toolstack.c_str(), X_OK) != 0)
      throw std::runtime_error(
          fmt::format("sim: toolstack {}: {}", options_.toolstack, std::strerror(errno)));
    toolstack_ = std::make_unique<Toolstack>(loop_, options_.toolstack, options_.toolstack_timeout);
  }
  for (auto& spec : domains) {
    if (auto added = insert(std::move(spec)); !added) throw std::invalid_argument(added.error().message);
  }
  if (!options_.autostart) return;
  for (auto& [name, d] : domains_) start(*d);
}

SimHypervisor::~SimHypervisor() {
  for (auto& [name, d] : domains_) kill_now(*d);
}

Result<SimHypervisor::Domain*> SimHypervisor::insert(DomainSpec spec) {
  if (spec.name.empty()) return fail(Errc::invalid_input, "sim: a domain without a name");
  if (spec.config_file.empty()) spec.config_file = "/etc/xen/" + spec.name + ".cfg";  // as Xen's
  std::string name = spec.name;
  auto d = std::make_unique<Domain>();
  d->spec = std::move(spec);
  if (console_only()) {
    // Running for as long as it is served: its tty is someone else's, and so is its guest.
    d->state = DomainState::running;
    d->domid = next_domid_++;
    d->started = EventLoop::Clock::now();
  }
  auto [it, added] = domains_.emplace(name, std::move(d));
  if (!added) return fail(Errc::invalid_input, "sim: domain '" + name + "' is listed twice");
  return it->second.get();
}

// A guest that cannot start leaves its domain shut off; the customer may try `start`.
void SimHypervisor::start(Domain& d) {
  if (console_only()) return;
  if (auto r = spawn(d); !r) log::error("sim: cannot start {}: {}", d.spec.name, r.error().message);
}

// Ends the guest without grace and reaps it before returning (SIGKILL is not refused).
void SimHypervisor::kill_now(Domain& d) {
  if (d.pid == 0) return;
  signal_guest(d.pid, SIGKILL);
  // ECHILD: a stray waitpid(-1) elsewhere reaped it; the guest is gone all the same.
  if (auto waited = wait_child(d.pidfd.get(), true); !waited)
    log::debug("sim: waiting for {}: {}", d.spec.name, waited.error().message);
  forget_process(d);
}

Result<void> SimHypervisor::add_domain(DomainSpec spec) {
  auto d = insert(std::move(spec));
  if (!d) return tl::unexpected(d.error());
  log::info("sim: {} added", (*d)->spec.name);
  if (options_.autostart) start(**d);
  return {};
}

Result<void> SimHypervisor::remove_domain(const std::string& domain) {
  auto it = domains_.find(domain);
  if (it == domains_.end()) return fail(Errc::not_found, "no such domain '" + domain + "'");
  Domain& d = *it->second;
  log::info("sim: {} removed{}", domain,
            d.pid ? fmt::format("; its guest (domid {}) is killed", d.domid) : "");
  kill_now(d);
  domains_.erase(it);
  return {};
}

std::vector<std::string> SimHypervisor::domains() const {
  std::vector<std::string> names;
  for (const auto& [name, d] : domains_) names.push_back(name);
  return names;
}

SimHypervisor::Domain* SimHypervisor::find(const std::string& name) const {
  auto it = domains_.find(name);
  return it == domains_.end() ? nullptr : it->second.get();
}

Result<DomainStatus> SimHypervisor::status(const std::string& domain) const {
  const Domain* d = find(domain);
  if (!d) return fail(Errc::not_found, "no such domain '" + domain + "'");
  DomainStatus s;
  s.name = d->spec.name;
  s.state = d->state;
  if (d->pid != 0 || console_only()) s.domid = d->domid;
  s.memory_mib = d->spec.memory_mib;
  s.vcpus = d->spec.vcpus;
  if (d->state == DomainState::running)
    s.uptime = std::chrono::duration_cast<std::chrono::seconds>(EventLoop::Clock::now() - d->started);
  return s;
}

Result<void> SimHypervisor::act(const std::string& domain, Lifecycle action) {
  Domain* d = find(domain);
  if (!d) return fail(Errc::not_found, "no such domain '" + domain + "'");
  if (console_only()) return refuse_console_only(domain, lifecycle_name(action));
  switch (action) {
    case Lifecycle::start:
      if (d->state == DomainState::running) return fail(Errc::wrong_state, domain + " is already running");
      if (d->state == DomainState::shutting_down)
        return fail(Errc::wrong_state, domain + " is still shutting down");
      return spawn(*d);
    case Lifecycle::shutdown:
    case Lifecycle::reboot: return stop(*d, action);
    case Lifecycle::destroy: return destroy(*d);
  }
  return fail(Errc::invalid_input, "unknown action");
}

Result<UniqueFd> SimHypervisor::open_console(const std::string& domain) {
  Domain* d = find(domain);
  if (!d) return fail(Errc::not_found, "no such domain '" + domain + "'");
  if (console_only()) return open_console_tty(domain);
  if (d->state != DomainState::running)
    return fail(Errc::wrong_state, fmt::format("{} is not running ({})", domain, state_name(d->state)));
  UniqueFd fd(::fcntl(d->master.get(), F_DUPFD_CLOEXEC, 0));
  if (!fd) return fail_errno("dup console of " + domain);
  return fd;
}

void SimHypervisor::act_async(const std::string& domain, Lifecycle action, ActDone done) {
  if (!toolstack_ || console_only()) return done(act(domain, action));
  Domain* d = find(domain);
  if (!d) return done(fail(Errc::not_found, "no such domain '" + domain + "'"));
  auto args = toolstack_args(*d, action);
  if (!args) return done(tl::unexpected(args.error()));
  // By name: a reload may remove the domain while the toolstack runs.
  toolstack_->run_async(*args, [this, domain, action, done = std::move(done)](Result<void> ran) {
    if (!ran) {
      auto why = fmt::format("cannot {} {}: {}", lifecycle_name(action), domain, ran.error().message);
      return done(fail(ran.error().code, why));
    }
    done(act(domain, action));
  });
}

// The argv the Xen backend gives xl, refused beforehand in the same cases.
Result<std::vector<std::string>> SimHypervisor::toolstack_args(const Domain& d, Lifecycle action) const {
  const std::string& name = d.spec.name;
  std::string domid = std::to_string(d.domid);
  switch (action) {
    case Lifecycle::start:
      if (d.state == DomainState::running) return fail(Errc::wrong_state, name + " is already running");
      if (d.state == DomainState::shutting_down)
        return fail(Errc::wrong_state, name + " is still shutting down");
      return std::vector<std::string>{"create", d.spec.config_file};
    case Lifecycle::shutdown:
    case Lifecycle::reboot:
      if (d.state != DomainState::running)
        return fail(Errc::wrong_state, fmt::format("{} is not running ({})", name, state_name(d.state)));
      return std::vector<std::string>{std::string(lifecycle_name(action)), "-F", domid};
    case Lifecycle::destroy:
      if (d.pid == 0 && d.state != DomainState::crashed)
        return fail(Errc::wrong_state, name + " is not running (shut off)");
      return std::vector<std::string>{"destroy", domid};
  }
  return fail(Errc::invalid_input, "unknown action");
}

void SimHypervisor::send_sysrq(const std::string& domain, char key, ActDone done) {
  Domain* d = find(domain);
  if (!d) return done(fail(Errc::not_found, "no such domain '" + domain + "'"));
  if (console_only()) return done(refuse_console_only(domain, key == 0 ? "send an NMI to" : "send SysRq to"));
  if (key != 0 || !toolstack_ || d->state != DomainState::running) return done(signal_sysrq(domain, key));
  auto sent = [this, domain, done = std::move(done)](Result<void> ran) {
    if (!ran)
      return done(
          fail(ran.error().code, fmt::format("cannot send an NMI to {}: {}", domain, ran.error().message)));
    done(signal_sysrq(domain, 0));
  };
  toolstack_->run_async({"trigger", std::to_string(d->domid), "nmi"}, std::move(sent));
}

Result<void> SimHypervisor::signal_sysrq(const std::string& domain, char key) {
  Domain* d = find(domain);
  if (!d) return fail(Errc::not_found, "no such domain '" + domain + "'");
  if (d->state != DomainState::running)
    return fail(Errc::wrong_state, fmt::format("{} is not running ({})", domain, state_name(d->state)));
  // The fake guest reads these from its signalfd: SIGUSR1 carries the key, SIGUSR2 is an NMI.
  sigval value{};
  value.sival_int = static_cast<unsigned char>(key);
  if (::sigqueue(d->pid, key == 0 ? SIGUSR2 : SIGUSR1, value) != 0) return fail_errno("sysrq to " + domain);
  return {};
}

Result<void> SimHypervisor::migrate_out(const std::string& domain) {
  Domain* d = find(domain);
  if (!d) return fail(Errc::not_found, "no such domain '" + domain + "'");
  if (console_only()) return refuse_console_only(domain, "migrate");
  if (d->state != DomainState::running)
    return fail(Errc::wrong_state, fmt::format("{} is not running ({})", domain, state_name(d->state)));
  log::info("sim: {} (domid {}) migrated away", domain, d->domid);
  kill_now(*d);
  d->state = DomainState::shut_off;
  notify_console_changed(domain);
  return {};
}

Result<void> SimHypervisor::refuse_console_only(const std::string& domain, std::string_view what) const {
  return fail(Errc::unavailable,
              fmt::format("cannot {} {}: its console is a tty in {} (sim.console_dir), and "
                          "the gateway serves only that console",
                          what, domain, options_.console_dir));
}

Result<UniqueFd> SimHypervisor::open_console_tty(const std::string& domain) const {
  auto fd = open_raw_tty(options_.console_dir + "/" + domain);
  if (!fd) return fail(Errc::unavailable, fmt::format("the console of {}: {}", domain, fd.error().message));
  return fd;
}

Result<void> SimHypervisor::spawn(Domain& d) {
  auto pty = open_console_pty();
  if (!pty) return tl::unexpected(pty.error());
  auto& [master, slave] = *pty;
  uint32_t domid = next_domid_++;
  ExecPlan plan = make_exec_plan(options_, d.spec.name, domid);

  auto child = start_child([&, &slave = slave] { run_child(slave.get(), plan); });
  slave.reset();
  if (!child) return tl::unexpected(child.error());
  pid_t pid = child->pid;
  UniqueFd pidfd = std::move(child->pidfd);
  try {
    d.exit_watch =
        loop_.watch(pidfd.get(), EPOLLIN, "guest " + d.spec.name, [this, &d](uint32_t) { on_guest_exit(d); });
  } catch (const std::system_error& e) {
    kill_and_reap(pid);
    return fail(Errc::system, e.what());
  }
  d.pid = pid;
  d.domid = domid;
  d.master = std::move(master);
  d.pidfd = std::move(pidfd);
  d.started = EventLoop::Clock::now();
  d.pending.reset();
  d.state = DomainState::running;
  log::info("sim: {} started as domid {} (pid {})", d.spec.name, domid, pid);
  notify_console_changed(d.spec.name);
  return {};
}

Result<void> SimHypervisor::stop(Domain& d, Lifecycle action) {
  const std::string& name = d.spec.name;
  if (d.state == DomainState::shutting_down && d.pending != Lifecycle::destroy) {
    d.pending = action;  // a shutdown may become a reboot and back while the guest winds down
    return {};
  }
  if (d.state != DomainState::running) return fail(Errc::wrong_state, name + " is not running");
  signal_guest(d.pid, SIGTERM);
  d.state = DomainState::shutting_down;
  d.pending = action;
  pid_t pid = d.pid;
  d.kill_timer = loop_.timer(options_.shutdown_grace, "guest " + d.spec.name + " kill", [this, &d, pid] {
    if (d.pid != pid) return;
    log::warn("sim: {} ignored the {} request for {} ms; killing it", d.spec.name, lifecycle_name(*d.pending),
              options_.shutdown_grace.count());
    signal_guest(pid, SIGKILL);
  });
  return {};
}

Result<void> SimHypervisor::destroy(Domain& d) {
  if (d.pid == 0) {
    if (d.state != DomainState::crashed) return fail(Errc::wrong_state, d.spec.name + " is not running");
    d.state = DomainState::shut_off;  // clearing away a crashed domain
    notify_console_changed(d.spec.name);
    return {};
  }
  signal_guest(d.pid, SIGKILL);
  d.kill_timer.reset();
  d.pending = Lifecycle::destroy;
  d.state = DomainState::shutting_down;  // until the pidfd reports the exit
  return {};
}

void SimHypervisor::on_guest_exit(Domain& d) {
  auto waited = wait_child(d.pidfd.get(), false);
  if (waited && waited->si_pid == 0) return;  // not exited after all
  // Not waited: a stray waitpid(-1) elsewhere reaped it (ECHILD); the guest is gone all the same.
  std::string how = waited ? describe_exit(*waited) : fmt::format("vanished ({})", waited.error().message);
  bool powered_off = waited && waited->si_code == CLD_EXITED && waited->si_status == 0;
  auto pending = d.pending;
  uint32_t old_domid = d.domid;
  forget_process(d);

  if (pending == Lifecycle::reboot) {
    log::info("sim: {} (domid {}) {}; rebooting", d.spec.name, old_domid, how);
    auto r = spawn(d);  // notifies on success
    if (r) return;
    log::error("sim: cannot restart {}: {}", d.spec.name, r.error().message);
  }
  d.state = (pending || powered_off) ? DomainState::shut_off : DomainState::crashed;
  log::info("sim: {} (domid {}) {}; now {}", d.spec.name, old_domid, how, state_name(d.state));
  notify_console_changed(d.spec.name);
}

void SimHypervisor::forget_process(Domain& d) {
  d.kill_timer.reset();
  d.exit_watch.reset();
  d.pidfd.reset();
  d.master.reset();
  d.pid = 0;
  d.pending.reset();
}

}  // namespace xcg::xen
