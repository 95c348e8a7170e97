#include "gateway/broker/broker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "base/child.h"
#include "base/log.h"
#include "base/sd_notify.h"
#include "gateway/broker/host_keys.h"
#include "xen/sim/sim_hypervisor.h"
#include "xen/xen_hypervisor.h"

namespace xcg::gateway {
namespace {

std::system_error sys_error(const char* what) {
  return std::system_error(errno, std::generic_category(), what);
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
  options.console_dir = config.sim.console_dir;
  options.toolstack_timeout = std::chrono::seconds(config.xen.timeout_s);
  return std::make_unique<xen::SimHypervisor>(loop, std::move(domains), std::move(options));
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
    throw std::runtime_error(
        fmt::format("chroot_dir {} must be owned by root and not writable by others", path));
  if (!std::filesystem::is_empty(path, ec) || ec)
    throw std::runtime_error(fmt::format("chroot_dir {} must be empty", path));
}

std::string_view listener_note(ListenerKind kind) {
  switch (kind) {
    case ListenerKind::ssh: return "";
    case ListenerKind::web_tls: return " (browser console, TLS)";
    case ListenerKind::web_plain: return " (browser console, plain HTTP behind a proxy)";
    case ListenerKind::metrics: return " (metrics)";
  }
  return "";
}

}  // namespace

BrokerParts real_broker_parts(const std::shared_ptr<const config::Config>& config,
                              const BrokerOptions& options) {
  BrokerParts parts;
  parts.spawner = std::make_unique<ExecSessionSpawner>(options.session_program, Filter::session);
  parts.listeners = open_listeners(config->listen);
  if (config->web || config->metrics)
    parts.web_spawner = std::make_unique<ExecSessionSpawner>(options.web_program, Filter::web);
  if (config->metrics)
    for (auto& l : open_listeners(config->metrics->listen, ListenerKind::metrics))
      parts.listeners.push_back(std::move(l));
  if (config->web) {
    for (auto kind : {ListenerKind::web_tls, ListenerKind::web_plain}) {
      const auto& addresses = kind == ListenerKind::web_tls ? config->web->listen : config->web->plain_listen;
      for (auto& l : open_listeners(addresses, kind)) parts.listeners.push_back(std::move(l));
    }
  }
  parts.make_hypervisor = [config, self_exe = options.self_exe](EventLoop& loop) {
    return make_hypervisor(loop, *config, self_exe);
  };
  return parts;
}

Broker::Broker(std::shared_ptr<const config::Config> config, BrokerOptions options, BrokerParts parts)
    : config_(std::move(config)),
      options_(std::move(options)),
      parts_(std::move(parts)),
      audit_(config_->audit_log),
      admission_(config_->limits, [this] { return std::uniform_int_distribution<unsigned>(0, 99)(rng_); }) {
  host_keys_pem_ = load_or_create_host_keys(config_->host_keys);
  if ((config_->web || config_->metrics) && !parts_.web_spawner)
    throw std::runtime_error("web: or metrics: is configured but there is no xcg-web to run");
  if (config_->web) {
    load_web_tls();
    const auto& secret_file = config_->web->panel_secret_file;
    auto secret = secret_file.empty() ? std::nullopt : std::optional(load_panel_secret(secret_file));
    web_tokens_ = std::make_unique<WebTokens>(std::move(secret), WebTokenLimits{},
                                              [] { return std::chrono::system_clock::now(); });
  }
  prepare_sandbox();
  open_signals();
  for (auto& l : parts_.listeners) watch_listener(l);
  hypervisor_ = parts_.make_hypervisor(loop_);
  parts_.make_hypervisor = nullptr;  // it holds start-up's config
  hubs_ = std::make_unique<HubDirectory>(loop_, *hypervisor_, config_->console);
  hypervisor_->set_domain_left([this](const std::string& domain) { domain_left(domain); });
  if (config_->cluster) start_fleet();
  open_node_links();  // a front's, on the fleet's registry
  if (!options_.control_socket.empty())
    control_ = std::make_unique<ControlServer>(
        loop_, options_.control_socket,
        [this](const std::string& request, const ControlServer::Reply& reply) {
          answer_control(request, reply);
        });
  start_key_map();
  spares_ = std::make_unique<SparePool>(loop_, [this] { return parts_.spawner->spawn(UniqueFd()); });
  spares_->set_target(config_->limits.spare_sessions);  // started by the loop, once it runs
  if (options_.watch_config) {
    config_watch_ = std::make_unique<ConfigWatch>(loop_, [this] { reload("config file changed"); });
    config_watch_->follow(*config_);
  }
  // Said last: whoever waits for these lines (operators, tests) finds everything ready.
  for (const auto& l : parts_.listeners) log::info("listening on {}{}", l.address, listener_note(l.kind));
}

Broker::~Broker() {
  spares_.reset();
  for (auto& [id, s] : sessions_) ::kill(s.pid, SIGKILL);
  for (auto& [id, s] : sessions_) (void)wait_child(s.pidfd.get(), true);  // gone either way
  sessions_.clear();
  hubs_.reset();
  hypervisor_.reset();  // stops the simulated guests
}

void Broker::take_session_limits() {
  const auto& limits = config_->limits;
  hello_.login_grace_s = limits.login_grace_s;
  hello_.max_auth_tries = limits.max_auth_tries;
  hello_.max_key_offers = limits.max_key_offers;
  hello_.idle_timeout_s = limits.idle_timeout_s;
  admission_.set_limits(limits);
}

void Broker::prepare_sandbox() {
  hello_.host_keys_pem = host_keys_pem_;
  hello_.front = config_->is_front();
  take_session_limits();
  if (::geteuid() != 0) {
    log::warn(
        "not running as root: session processes keep uid {} and skip the chroot; "
        "the rest of the sandbox still applies",
        ::geteuid());
    return;
  }
  errno = 0;
  const passwd* pw = ::getpwnam(config_->run_as.c_str());
  if (pw == nullptr)
    throw std::runtime_error(
        fmt::format("run_as user '{}' does not exist; create it with: useradd --system --no-create-home "
                    "--shell /usr/sbin/nologin {}",
                    config_->run_as, config_->run_as));
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

// Listeners and signals are the broker's own, registered for the loop's whole life: after a
// failure they are watched again, or the broker would stop accepting or could no longer be
// stopped.
void Broker::watch_signals() {
  loop_.add(
      signal_fd_.get(), EPOLLIN, "signals", [this](uint32_t) { on_signal(); }, [this] { watch_signals(); });
}

void Broker::watch_listener(const Listener& l) {
  loop_.add(
      l.fd.get(), EPOLLIN, "accept " + l.address,
      [this, fd = l.fd.get(), kind = l.kind](uint32_t) { on_accept(fd, kind); },
      [this, &l] { watch_listener(l); });
}

void Broker::on_signal() {
  signalfd_siginfo info{};
  while (::read(signal_fd_.get(), &info, sizeof info) == sizeof info) {
    if (info.ssi_signo == SIGHUP) {
      reload("SIGHUP");
      continue;
    }
    log::info("signal {}: shutting down", info.ssi_signo);
    shut_down();
  }
}

int Broker::run() {
  (void)sd_notify::ready(fmt::format("serving {} domains", hubs_->size()));  // no-op outside systemd
  loop_.run();
  (void)sd_notify::stopping();
  return exit_code_;
}

void Broker::on_accept(int listen_fd, ListenerKind kind) {
  for (;;) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      accept_one(UniqueFd(fd), kind);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) log::warn("accept: {}", std::strerror(errno));
    return;
  }
}

void Broker::accept_one(UniqueFd tcp, ListenerKind kind) {
  std::string remote = peer_address(tcp.get());
  const auto& limits = config_->limits;
  std::string source = source_bucket(host_of(remote), limits.source_prefix_v4, limits.source_prefix_v6);
  // Dropping closes the connection: OpenSSH's MaxStartups does the same.
  if (auto why = admission_.refusal(source)) return log_drop(source, *why);
  // `web:` or `metrics:` removed by a reload: listening until restart.
  if (kind == ListenerKind::metrics ? !config_->metrics : kind != ListenerKind::ssh && !config_->web) return;
  // Consoles are interactive: without this, Nagle holds a keystroke's echo back until the
  // client's delayed ACK (~40 ms on every login's first exchange; found by ./dev bench).
  int one = 1;
  if (!is_unix(remote) && ::setsockopt(tcp.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
    log::debug("TCP_NODELAY: {}", std::strerror(errno));
  spawn_session(std::move(tcp), remote, source, kind);
}

// A flood must not flood the log: one line per ten seconds.
void Broker::log_drop(const std::string& source, std::string_view why) {
  auto now = parts_.now();
  if (now - last_drop_log_ <= std::chrono::seconds(10)) return;
  log::warn("dropping connection from {}: {} ({} unauthenticated)", source, why, admission_.logging_in());
  last_drop_log_ = now;
}

void Broker::spawn_session(UniqueFd tcp, std::string remote, std::string source, ListenerKind kind) {
  bool web = kind != ListenerKind::ssh;  // xcg-web: the browser console or the metrics
  UniqueFd pass;
  auto spawned = start_session(tcp, kind, pass);
  if (!spawned) return log::error("cannot start a session for {}: {}", remote, spawned.error().message);
  SessionRecord s;
  s.id = next_session_id_++;
  s.kind = kind == ListenerKind::metrics ? SessionKind::metrics : web ? SessionKind::web : SessionKind::ssh;
  s.front = s.kind != SessionKind::metrics && config_->is_front();
  // Whoever may open a unix listener's socket file is a proxy the operator let in.
  s.trust_forwarded_for = kind == ListenerKind::web_plain && config_->web &&
                          (is_unix(remote) || in_networks(host_of(remote), config_->web->trusted_proxies));
  s.max_auth_requests = static_cast<int>(hello_.max_auth_tries + hello_.max_key_offers) + 2;  // SSH only
  s.pid = spawned->child.pid;
  s.pidfd = std::move(spawned->child.pidfd);
  s.ipc = std::move(spawned->ipc);
  set_nonblocking(s.ipc.get());
  s.remote = std::move(remote);
  s.source = std::move(source);
  admission_.login_started(s.source);
  auto& stored = sessions_.emplace(s.id, std::move(s)).first->second;
  watch_session(stored);
  log::debug("session {} pid {} from {}{}", stored.id, stored.pid, stored.remote,
             stored.kind == SessionKind::metrics ? " (metrics)"
             : web                               ? " (web)"
                                                 : "");
  send(stored, web ? web_hello(kind, stored.trust_forwarded_for) : hello_, pass.get());
}

Result<SpawnedSession> Broker::start_session(UniqueFd& tcp, ListenerKind kind, UniqueFd& pass) {
  // A listener of a config without `web:` or `metrics:` cannot exist (they are bound at start-up only).
  if (kind != ListenerKind::ssh) return parts_.web_spawner->spawn(std::move(tcp));
  if (auto spare = spares_->take()) {
    pass = std::move(tcp);
    return std::move(*spare);
  }
  return parts_.spawner->spawn(std::move(tcp));
}

void Broker::watch_session(SessionRecord& s) {
  uint64_t id = s.id;
  std::string name = fmt::format("session {}", id);
  auto drop = [this, id] { drop_session(id); };
  auto grace = std::chrono::seconds(config_->limits.login_grace_s);
  s.grace_timer = loop_.timer(
      grace, name + " login grace",
      [this, id] {
        auto it = sessions_.find(id);
        if (it != sessions_.end() && !it->second.authorized) cut_off(it->second, "login grace time over");
      },
      drop);
  s.exit_watch = loop_.watch(
      s.pidfd.get(), EPOLLIN, name + " exit", [this, id](uint32_t) { on_session_exit(id); }, drop);
  s.ipc_watch = loop_.watch(
      s.ipc.get(), EPOLLIN, name + " ipc", [this, id](uint32_t) { on_session_message(id); }, drop);
}

void Broker::on_session_exit(uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  SessionRecord& s = it->second;
  auto waited = wait_child(s.pidfd.get(), false);
  if (!waited || waited->si_pid == 0) return;  // not yet
  const siginfo_t& info = *waited;
  if (s.authorized) {
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

// Its registrations end with the record; what is left is the accounting.
void Broker::forget(SessionRecord& s) {
  if (actions_.cancel(s.id))
    audit(s, "action",
          {{"action", s.action_in_flight},
           {"result", "error"},
           {"reason", "the session ended before it started"}});
  if (s.authorized) admission_.session_ended(s.domain);
  else admission_.login_ended(s.source);
  if (!s.authorized) count_login_failure(s);
}

void Broker::set_authorized(SessionRecord& s, const std::string& domain) {
  admission_.logged_in(s.source, domain);
  ++counters_.logins.at(static_cast<size_t>(s.kind));
  s.authorized = true;
  s.domain = domain;
  s.grace_timer.reset();
}

void Broker::cut_off(SessionRecord& s, std::string_view why) {
  log::warn("session {} ({}): {}; ending it", s.pid, s.remote, why);
  ::kill(s.pid, SIGKILL);
  s.close_ipc();
}

void Broker::audit(const SessionRecord& s, std::string event,
                   std::vector<std::pair<std::string, std::string>> extra) {
  if (!s.front_fingerprint.empty()) extra.emplace_back("front_fp", s.front_fingerprint);
  audit_.write(AuditEvent{std::move(event), s.remote, s.domain, s.fingerprint, std::move(extra)});
}

}  // namespace xcg::gateway
