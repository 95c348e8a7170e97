#include "gateway/broker/broker.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pwd.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <cerrno>
#include <filesystem>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include "base/child.h"
#include "base/log.h"
#include "base/sd_notify.h"
#include "gateway/broker/host_keys.h"
#include "gateway/session/session.h"
#include "xen/sim/sim_hypervisor.h"
#include "xen/xen_hypervisor.h"

namespace xcg::gateway {
namespace {

std::system_error sys_error(const char* what) { return std::system_error(errno, std::generic_category(), what); }

xen::DomainSpec domain_spec(const config::Domain& d) {
  auto console = d.xen_console == config::XenConsole::pv       ? xen::ConsoleType::pv
                 : d.xen_console == config::XenConsole::serial ? xen::ConsoleType::serial
                                                               : xen::ConsoleType::automatic;
  return {d.name, d.memory_mib, d.vcpus, d.config_file, console};
}

std::unique_ptr<xen::Hypervisor> make_hypervisor(EventLoop& loop, const config::Config& config,
                                                 const std::string& self_exe) {
  std::vector<xen::DomainSpec> domains;
  for (const auto& [name, d] : config.domains) domains.push_back(domain_spec(d));
  if (config.hypervisor == config::HypervisorKind::xen) {
    xen::XenOptions options;
    options.toolstack = config.xen.toolstack;
    options.timeout = std::chrono::seconds(config.xen.timeout_s);
    options.lock_dir = config.xen.lock_dir;
    return xen::XenHypervisor::open(loop, std::move(domains), std::move(options));  // throws one line
  }
  xen::SimOptions options;
  options.guest_command = config.sim.guest_command;
  options.shutdown_grace = std::chrono::milliseconds(config.sim.shutdown_grace_ms);
  options.self_exe = self_exe;
  options.autostart = config.sim.autostart;
  options.toolstack = config.sim.toolstack;
  options.toolstack_timeout = std::chrono::seconds(config.xen.timeout_s);
  return std::make_unique<xen::SimHypervisor>(loop, std::move(domains), std::move(options));
}

// In the forked child: lay out the descriptors a session process expects, then exec it.
[[noreturn]] void exec_session(int tcp, int ipc, const std::string& program, char* const envp[],
                               pid_t broker) {
  // Move both out of the way first: either may already sit on 0..3.
  int tcp_hi = ::fcntl(tcp, F_DUPFD, 10);
  int ipc_hi = ::fcntl(ipc, F_DUPFD, 10);
  if (tcp_hi < 0 || ipc_hi < 0) ::_exit(126);
  if (::dup2(tcp_hi, kSessionTcpFd) < 0 || ::dup2(tcp_hi, 1) < 0 || ::dup2(ipc_hi, 2) < 0 ||
      ::dup2(ipc_hi, kSessionIpcFd) < 0)
    ::_exit(126);
  ::close_range(kSessionIpcFd + 1, ~0U, 0);
  // The broker blocks the signals it reads through signalfd; the session starts clean.
  if (reset_signals_in_child() != 0) ::_exit(126);
  // A session must never outlive its broker; if the broker died before the prctl, the signal
  // will never come.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != broker) ::_exit(126);
  // A storm of handshakes must not starve the broker, which serves every console.
  (void)::setpriority(PRIO_PROCESS, 0, 5);  // best effort: a failure only costs fairness
  char arg0[] = "xcg-session";
  char* argv[] = {arg0, nullptr};
  ::execve(program.c_str(), argv, envp);
  ::_exit(127);
}

// Found missing at start-up rather than by every connection's exec.
void check_session_program(const std::string& path) {
  if (path.empty() || path.front() != '/')
    throw std::runtime_error(fmt::format("session program '{}' is not an absolute path", path));
  if (::access(path.c_str(), X_OK) != 0)
    throw std::runtime_error(fmt::format("session program {}: {}", path, std::strerror(errno)));
}

// The chroot of session processes: root-owned, not writable by anyone else, and empty.
void prepare_empty_dir(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    std::filesystem::create_directories(path, ec);
    if (ec) throw std::runtime_error(fmt::format("chroot_dir {}: {}", path, ec.message()));
    if (::chmod(path.c_str(), 0755) != 0) throw sys_error("chmod chroot_dir");
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) throw sys_error("stat chroot_dir");
  if (!S_ISDIR(st.st_mode)) throw std::runtime_error(fmt::format("chroot_dir {} is not a directory", path));
  if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
    throw std::runtime_error(fmt::format("chroot_dir {} must be owned by root and not writable by others", path));
  if (!std::filesystem::is_empty(path, ec) || ec)
    throw std::runtime_error(fmt::format("chroot_dir {} must be empty", path));
}

// Sessions get none of the broker's environment, except sanitizer settings in test builds.
std::vector<std::string> session_environment(char** environ_) {
  std::vector<std::string> env;
  for (char** e = environ_; e && *e; ++e) {
    std::string_view v(*e);
    if (v.rfind("ASAN_", 0) == 0 || v.rfind("UBSAN_", 0) == 0 || v.rfind("LSAN_", 0) == 0)
      env.emplace_back(v);
  }
  return env;
}

}  // namespace

Broker::Broker(std::shared_ptr<const config::Config> config, BrokerOptions options)
    : config_(std::move(config)),
      options_(std::move(options)),
      audit_(config_->audit_log),
      console_settings_(config_->console) {
  check_session_program(options_.session_program);
  host_keys_pem_ = load_or_create_host_keys(config_->host_keys);
  session_env_ = session_environment(environ);
  for (auto& e : session_env_) session_envp_.push_back(e.data());
  session_envp_.push_back(nullptr);
  prepare_sandbox();
  open_signals();
  listeners_ = open_listeners(config_->listen);
  for (auto& l : listeners_) watch_listener(l.fd.get(), l.address);
  hypervisor_ = make_hypervisor(loop_, *config_, options_.self_exe);
  for (const auto& name : hypervisor_->domains()) {
    open_hub(name);
    sync_hub(name, /*announce=*/false);  // running before we came is no news to anyone
  }
  hypervisor_->set_console_changed(
      [this](const std::string& domain) { sync_hub(domain, /*announce=*/domain != adding_domain_); });
  if (!options_.control_socket.empty())
    control_ = std::make_unique<ControlServer>(loop_, options_.control_socket,
                                               [this](const std::string& r) { return handle_control(r); });
  if (options_.watch_config) watch_config_files();
  // Said last: whoever waits for these lines (operators, tests) finds everything ready.
  for (const auto& l : listeners_) log::info("listening on {}", l.address);
}

Broker::~Broker() {
  for (auto& [id, s] : sessions_) ::kill(s.pid, SIGKILL);
  for (auto& [id, s] : sessions_) (void)wait_child(s.pidfd.get(), true);  // gone either way
  hubs_.clear();
  closing_hubs_.clear();
  hypervisor_.reset();  // stops the simulated guests
}

void Broker::take_session_limits() {
  const auto& limits = config_->limits;
  hello_.login_grace_s = limits.login_grace_s;
  hello_.max_auth_tries = limits.max_auth_tries;
  hello_.max_key_offers = limits.max_key_offers;
  hello_.idle_timeout_s = limits.idle_timeout_s;
}

void Broker::prepare_sandbox() {
  hello_.host_keys_pem = host_keys_pem_;
  take_session_limits();
  if (::geteuid() != 0) {
    log::warn("not running as root: session processes keep uid {} and skip the chroot; "
              "the rest of the sandbox still applies", ::geteuid());
    return;
  }
  errno = 0;
  const passwd* pw = ::getpwnam(config_->run_as.c_str());
  if (pw == nullptr)
    throw std::runtime_error(fmt::format(
        "run_as user '{}' does not exist; create it with: useradd --system --no-create-home "
        "--shell /usr/sbin/nologin {}", config_->run_as, config_->run_as));
  if (pw->pw_uid == 0) throw std::runtime_error("run_as user must not have uid 0");
  hello_.drop_privileges = true;
  hello_.uid = pw->pw_uid;
  hello_.gid = pw->pw_gid;
  hello_.chroot_dir = config_->chroot_dir;
  prepare_empty_dir(config_->chroot_dir);
}

void Broker::open_signals() {
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) throw sys_error("sigprocmask");
  signal_fd_.reset(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_) throw sys_error("signalfd");
  watch_signals();
}

// Listeners and signals are the broker's own: after a failure they are watched again, or the
// broker would stop accepting or could no longer be stopped.
void Broker::watch_signals() {
  loop_.add(signal_fd_.get(), EPOLLIN, "signals", [this](uint32_t) { on_signal(); },
            [this] { watch_signals(); });
}

void Broker::watch_listener(int fd, const std::string& address) {
  loop_.add(fd, EPOLLIN, "accept " + address, [this, fd](uint32_t) { on_accept(fd); },
            [this, fd, address] { watch_listener(fd, address); });
}

void Broker::on_signal() {
  signalfd_siginfo info{};
  while (::read(signal_fd_.get(), &info, sizeof info) == sizeof info) {
    if (info.ssi_signo == SIGHUP) {
      reload("SIGHUP");
      continue;
    }
    log::info("signal {}: shutting down", info.ssi_signo);
    loop_.stop();
  }
}

int Broker::run() {
  (void)sd_notify::ready(fmt::format("serving {} domains", hubs_.size()));  // no-op outside systemd
  loop_.run();
  (void)sd_notify::stopping();
  return exit_code_;
}

void Broker::on_accept(int listen_fd) {
  for (;;) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) log::warn("accept: {}", std::strerror(errno));
      return;
    }
    UniqueFd tcp(fd);
    std::string remote = peer_address(fd);
    const auto& limits = config_->limits;
    std::string source = source_bucket(host_of(remote), limits.source_prefix_v4, limits.source_prefix_v6);
    if (!admit(source)) continue;  // closes the connection: OpenSSH's MaxStartups does the same
    // Consoles are interactive: without this, Nagle holds a keystroke's echo back until the
    // client's delayed ACK (~40 ms on every login's first exchange; found by ./dev bench).
    int one = 1;
    if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
      log::debug("TCP_NODELAY: {}", std::strerror(errno));
    try {
      spawn_session(std::move(tcp), remote, source);
    } catch (const std::exception& e) {
      log::error("cannot start a session for {}: {}", remote, e.what());
    }
  }
}

// MaxStartups-style random early drop, plus a per-source cap, so that a flood of idle
// connections can neither exhaust processes nor crowd out customers from elsewhere.
bool Broker::admit(const std::string& source) {
  const auto& l = config_->limits;
  bool drop = false;
  const char* why = "";
  // Looked up, not inserted: the count is only taken when the session is spawned, and a spawn
  // that fails must leave no entry behind.
  auto counted = preauth_by_source_.find(source);
  if (counted != preauth_by_source_.end() && counted->second >= l.max_startups_per_source) {
    drop = true;
    why = "max_startups_per_source";
  } else if (preauth_count_ >= l.startups_full) {
    drop = true;
    why = "max_startups (full)";
  } else if (preauth_count_ >= l.startups_begin) {
    unsigned span = l.startups_full - l.startups_begin;
    unsigned p = l.startups_rate + (100 - l.startups_rate) * (preauth_count_ - l.startups_begin) / std::max(1u, span);
    drop = std::uniform_int_distribution<unsigned>(0, 99)(rng_) < p;
    why = "max_startups (random early drop)";
  }
  if (!drop) return true;
  auto now = std::chrono::steady_clock::now();
  if (now - last_drop_log_ > std::chrono::seconds(10)) {  // a flood must not flood the log
    log::warn("dropping connection from {}: {} ({} unauthenticated)", source, why, preauth_count_);
    last_drop_log_ = now;
  }
  return false;
}

void Broker::spawn_session(UniqueFd tcp, std::string remote, std::string source) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) throw sys_error("socketpair");
  UniqueFd ours(pair[0]), theirs(pair[1]);
  const pid_t broker = ::getpid();
  auto child = start_child([&] {
    exec_session(tcp.get(), theirs.get(), options_.session_program, session_envp_.data(), broker);
  });
  theirs.reset();
  tcp.reset();
  if (!child) throw std::runtime_error(child.error().message);
  Session s;
  s.id = next_session_id_++;
  s.max_auth_requests = static_cast<int>(hello_.max_auth_tries + hello_.max_key_offers) + 2;
  s.pid = child->pid;
  s.pidfd = std::move(child->pidfd);
  s.ipc = std::move(ours);
  set_nonblocking(s.ipc.get());
  s.remote = std::move(remote);
  s.source = std::move(source);
  ++preauth_count_;
  ++preauth_by_source_[s.source];
  uint64_t id = s.id;
  std::string name = fmt::format("session {}", id);
  auto drop = [this, id] { drop_session(id); };
  auto grace = std::chrono::seconds(config_->limits.login_grace_s);
  s.grace_timer = loop_.add_timer(grace, name + " login grace", [this, id] {
    auto it = sessions_.find(id);
    if (it == sessions_.end() || it->second.phase != Phase::preauth) return;
    it->second.grace_timer = 0;
    cut_off(it->second, "login grace time over");
  }, drop);
  loop_.add(s.pidfd.get(), EPOLLIN, name + " exit", [this, id](uint32_t) { on_session_exit(id); }, drop);
  loop_.add(s.ipc.get(), EPOLLIN, name + " ipc", [this, id](uint32_t) { on_session_message(id); }, drop);
  auto& stored = sessions_.emplace(id, std::move(s)).first->second;
  log::debug("session {} pid {} from {}", id, stored.pid, stored.remote);
  if (auto sent = ipc::send(stored.ipc.get(), hello_); !sent)
    cut_off(stored, sent.error().message);
}

void Broker::on_session_exit(uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  Session& s = it->second;
  auto waited = wait_child(s.pidfd.get(), false);
  if (!waited || waited->si_pid == 0) return;  // not yet
  const siginfo_t& info = *waited;
  if (s.phase == Phase::authorized) {
    std::string how = info.si_code == CLD_EXITED ? fmt::format("exit {}", info.si_status)
                                                 : fmt::format("signal {}", info.si_status);
    audit(s, "session_end", {{"status", how}});
  }
  settle_requests(s);
  forget(s);
  sessions_.erase(it);
}

// After one of the session's own callbacks failed: end it here, without its usual path.
void Broker::drop_session(uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  // Through the pidfd: the failed callback may have reaped it already, and its pid be reused.
  (void)::syscall(SYS_pidfd_send_signal, it->second.pidfd.get(), SIGKILL, nullptr, 0);
  (void)wait_child(it->second.pidfd.get(), true);  // after SIGKILL: a moment, not a wait
  forget(it->second);
  sessions_.erase(it);
}

void Broker::forget(Session& s) {
  if (actions_.cancel(s.id))
    audit(s, "action",
          {{"action", s.action_in_flight}, {"result", "error"}, {"reason", "the session ended before it started"}});
  if (s.grace_timer) loop_.cancel_timer(s.grace_timer);
  s.grace_timer = 0;
  loop_.remove(s.pidfd.get());
  if (s.ipc) loop_.remove(s.ipc.get());
  if (s.phase == Phase::preauth) {
    --preauth_count_;
    if (--preauth_by_source_[s.source] == 0) preauth_by_source_.erase(s.source);
  } else if (--sessions_by_domain_[s.domain] == 0) {
    sessions_by_domain_.erase(s.domain);
  }
}

void Broker::set_authorized(Session& s, const std::string& domain) {
  --preauth_count_;
  if (--preauth_by_source_[s.source] == 0) preauth_by_source_.erase(s.source);
  s.phase = Phase::authorized;
  s.domain = domain;
  ++sessions_by_domain_[domain];
  if (s.grace_timer) loop_.cancel_timer(s.grace_timer);
  s.grace_timer = 0;
}

void Broker::cut_off(Session& s, std::string_view why) {
  log::warn("session {} ({}): {}; ending it", s.pid, s.remote, why);
  ::kill(s.pid, SIGKILL);
  if (s.ipc) {
    loop_.remove(s.ipc.get());
    s.ipc.reset();
  }
}

void Broker::audit(const Session& s, std::string event, std::vector<std::pair<std::string, std::string>> extra) {
  audit_.write(AuditEvent{std::move(event), s.remote, s.domain, s.fingerprint, std::move(extra)});
}

void Broker::open_hub(const std::string& domain) {
  const auto& console = console_settings_;
  HubSettings settings{console.scrollback_bytes, console.replay_bytes,
                       console.log_dir.empty() ? "" : console.log_dir + "/" + domain + ".log",
                       console.log_max_bytes};
  hubs_.emplace(domain, std::make_unique<ConsoleHub>(loop_, domain, std::move(settings)));
}

// A domain new in the config. Its hub comes first, so that the hypervisor's first notice
// (the sim starting the guest, Xen finding it running) finds the hub there.
Result<void> Broker::add_domain(const config::Domain& d) {
  // Removed and added again before its old hub closed: one writer per console log.
  std::erase_if(closing_hubs_, [&](const auto& entry) { return entry.second->domain() == d.name; });
  open_hub(d.name);
  // Running before it was added (Xen) or started by the adding (sim autostart): like the
  // domains found at start-up, no news for anyone.
  adding_domain_ = d.name;
  auto added = hypervisor_->add_domain(domain_spec(d));
  adding_domain_.clear();
  if (!added) {
    hubs_.erase(d.name);
    return added;
  }
  sync_hub(d.name, /*announce=*/false);
  return {};
}

// A domain gone from the config; its sessions have just been revoked. The console (and on Xen
// its lock) is let go at once and the guest's last output logged. The hub itself closes only
// when those sessions have had the time to tell their customers why: a viewer whose console
// closed first would end without the line. The console log file stays on disk.
void Broker::remove_domain(const std::string& domain) {
  if (auto it = hubs_.find(domain); it != hubs_.end()) {
    it->second->set_console({});
    uint64_t key = next_closing_hub_++;
    closing_hubs_.emplace(key, std::move(it->second));
    hubs_.erase(it);
    loop_.add_timer(kRevokeGrace, "close hub " + domain, [this, key] { closing_hubs_.erase(key); });
  }
  last_domid_.erase(domain);
  end_reboot_window(domain);
  if (auto removed = hypervisor_->remove_domain(domain); !removed)
    log::warn("removing {}: {}", domain, removed.error().message);
}

// One window per reboot: seen again (Xen reports the reason for as long as the old domain is
// there), it does not slide or reopen, so a domain that never comes back is announced once it
// closes. It is forgotten when the domain runs again or the customer acts on it.
void Broker::expect_reboot(const std::string& domain) {
  if (reboot_windows_.contains(domain)) return;
  auto timer = loop_.add_timer(std::chrono::duration_cast<std::chrono::milliseconds>(kRebootWindow) +
                                   std::chrono::milliseconds(10),
                               "reboot window " + domain, [this, domain] { sync_hub(domain); });
  reboot_windows_[domain] = RebootWindow{std::chrono::steady_clock::now() + kRebootWindow, timer};
}

bool Broker::reboot_expected(const std::string& domain) const {
  auto it = reboot_windows_.find(domain);
  return it != reboot_windows_.end() && std::chrono::steady_clock::now() < it->second.until;
}

void Broker::end_reboot_window(const std::string& domain) {
  auto it = reboot_windows_.find(domain);
  if (it == reboot_windows_.end()) return;
  loop_.cancel_timer(it->second.timer);
  reboot_windows_.erase(it);
}

void Broker::sync_hub(const std::string& domain, bool announce) {
  auto found = hubs_.find(domain);
  if (found == hubs_.end()) return;
  ConsoleHub& hub = *found->second;
  auto status = hypervisor_->status(domain);
  if (!status) return log::warn("status of {}: {}", domain, status.error().message);
  auto& last = last_domid_[domain];
  if (status->state != xen::DomainState::running) {
    hub.set_console({});
    // On Xen a reboot is the old domain going away and a new one coming: say nothing until we
    // know which, so that viewers get one line ("rebooted, new domid 12"), not two.
    if (status->rebooting) expect_reboot(domain);
    if (last && reboot_expected(domain)) return;
    if (last) hub.notice(fmt::format("{} is {}", domain, xen::state_name(status->state)));
    last.reset();
    return;
  }
  end_reboot_window(domain);
  if (last == status->domid && hub.has_console()) return;
  auto console = hypervisor_->open_console(domain);
  if (!console) return log::warn("console of {}: {}", domain, console.error().message);
  if (last != status->domid) {
    // Viewers stay attached; one line tells them what happened, then the new boot follows.
    uint32_t domid = status->domid.value_or(0);
    hub.mark_boot();
    if (announce)
      hub.notice(last ? fmt::format("{} rebooted, new domid {}", domain, domid)
                      : fmt::format("{} started, domid {}", domain, domid));
  }
  hub.set_console(std::move(*console));
  last = status->domid;
}

}  // namespace xcg::gateway
