#include "gateway/session/session.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <stdexcept>

#include <fmt/format.h>

#include "base/log.h"
#include "base/wipe.h"
#include "gateway/session/broker_client.h"
#include "gateway/session/login_marks.h"
#include "gateway/session/node_relay.h"
#include "gateway/session/sandbox.h"
#include "gateway/session/ssh_connection.h"
#include "gateway/session/ssh_options.h"
#include "gateway/ssh_handles.h"

namespace xcg::gateway {
namespace {

constexpr int kPollMs = 1000;

enum ExitCode { kOk = 0, kSetupFailed = 1, kKexFailed = 2, kLoginTimeout = 3, kAuthFailed = 4 };

void route_logs_to(BrokerClient& broker) {
  log::set_sink(
      [&broker](log::Level level, std::string_view text) { broker.log(static_cast<int>(level), text); });
}

SshBind make_bind(const std::vector<std::string>& host_keys_pem) {
  SshBind bind(ssh_bind_new());
  if (!bind) throw std::runtime_error("ssh_bind_new failed");
  apply_bind_options(bind.get());
  for (const auto& pem : host_keys_pem) {
    ssh_key raw = nullptr;
    if (ssh_pki_import_privkey_base64(pem.c_str(), nullptr, nullptr, nullptr, &raw) != SSH_OK)
      throw std::runtime_error("cannot import a host key");
    SshKey key(raw);
    if (ssh_bind_options_set(bind.get(), SSH_BIND_OPTIONS_IMPORT_KEY, key.get()) != SSH_OK)
      throw std::runtime_error("cannot use a host key");
    static_cast<void>(key.release());  // the bind owns it now
  }
  return bind;
}

// The menu, commands and console; or, on a front, the relay to the domain's node.
SshConnection::MakeCore core_maker(BrokerClient& broker, const ipc::Hello& hello, ssh_key key,
                                   ssh_event event) {
  if (!hello.front)
    return [&broker, idle = hello.idle_timeout_s](Terminal& t,
                                                  const Customer& c) -> std::unique_ptr<ChannelCore> {
      return std::make_unique<CustomerSession>(t, broker, c, idle);
    };
  return [&broker, key, event](Terminal& t, const Customer& c) -> std::unique_ptr<ChannelCore> {
    return std::make_unique<NodeRelay>(t, broker, c, NodeRelay::Setup{key, event});
  };
}

// After each write libssh holds back the next until its poll reports the socket writable again.
// When one read brings both the client's version line and a KEXINIT it refuses, it queues its
// own KEXINIT, refuses, closes the socket, then flushes into the closed socket: the client never
// learns what did not match and the flush's socket error replaces the reason. Told that the
// socket is writable, it sends its KEXINIT as it queues it. Not before the first call: that one
// sends the version line, and it must not go out ahead of that call's own read, which could then
// bring the client's KEXINIT with ours held back again.
void let_sends_through(ssh_session session) {
  pollfd p{ssh_get_fd(session), POLLOUT, 0};
  if (::poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) != 0) ssh_set_fd_towrite(session);
}

// The client's bytes, and room in the socket while libssh holds output back: let through, it
// sends the first message of a read at once but may still hold back the ones after it.
short awaited(ssh_session session) {
  bool held_back = (ssh_get_poll_flags(session) & SSH_WRITE_PENDING) != 0;
  return static_cast<short>(held_back ? POLLIN | POLLOUT : POLLIN);
}

// Runs the key exchange without blocking past `deadline` (libssh has no timeout of its own).
bool exchange_keys(ssh_session session, std::chrono::steady_clock::time_point deadline) {
  ssh_set_blocking(session, 0);
  for (;;) {
    int rc = ssh_handle_key_exchange(session);
    if (rc == SSH_OK) return true;
    if (rc != SSH_AGAIN) {
      log::info("key exchange failed: {}", ssh_get_error(session));
      return false;
    }
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      log::info("key exchange timed out");
      return false;
    }
    pollfd p{ssh_get_fd(session), awaited(session), 0};
    if (::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), kPollMs))) < 0 && errno != EINTR)
      return false;
    let_sends_through(session);
  }
}

int serve_connection(BrokerClient& broker, ipc::Hello& hello, pid_t broker_pid, SeccompProgram seccomp) {
  SshBind bind = make_bind(hello.host_keys_pem);
  SshKey own_key = hello.front ? load_front_key(hello.host_keys_pem) : SshKey();
  wipe(hello.host_keys_pem);  // libssh holds the keys now
  SshSession session(ssh_new());
  if (!session) throw std::runtime_error("ssh_new failed");
  if (ssh_bind_accept_fd(bind.get(), session.get(), kSessionTcpFd) != SSH_OK) {
    log::info("accept failed: {}", ssh_get_error(bind.get()));
    return kKexFailed;
  }
  bind.reset();
  apply_session_options(session.get());

  SshEvent event(ssh_event_new());
  if (!event) throw std::runtime_error("ssh_event_new failed");
  SshConnection conn(session.get(), event.get(), broker,
                     SshConnection::Limits{hello.max_auth_tries, hello.max_key_offers, hello.idle_timeout_s},
                     core_maker(broker, hello, own_key.get(), event.get()));
  conn.install();

  SandboxSpec spec{hello.drop_privileges, hello.uid, hello.gid, hello.chroot_dir};
  spec.broker = broker_pid;
  spec.seccomp = std::move(seccomp);
  if (auto sandboxed = enter_sandbox(spec); !sandboxed) {
    log::error("cannot enter the sandbox: {}", sandboxed.error().message);
    return kSetupFailed;
  }
  mark_login_step(LoginStep::sandbox);
  // From here on, the first byte from the network is read.
  auto login_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(hello.login_grace_s);
  if (!exchange_keys(session.get(), login_deadline)) return kKexFailed;
  mark_login_step(LoginStep::key_exchange);
  if (ssh_event_add_session(event.get(), session.get()) != SSH_OK)
    throw std::runtime_error("ssh_event_add_session failed");

  while (!conn.done()) {
    if (!conn.authenticated() && std::chrono::steady_clock::now() > login_deadline) {
      log::info("login grace time over");
      ssh_disconnect(session.get());
      ssh_event_remove_session(event.get(), session.get());
      return kLoginTimeout;
    }
    // Not a reason to stop by itself: a front's relay polls its node's session in the same
    // event, and a lost node is the relay's to tell the customer about in the step. The
    // customer's own session failing shows in its status, checked below.
    if (ssh_event_dopoll(event.get(), kPollMs) == SSH_ERROR) log::debug("ssh event poll: an error");
    conn.step(std::chrono::steady_clock::now());
    // A fatal protocol error (bad MAC, bad length, a forbidden message) closes the session
    // inside libssh without the socket closing: ssh_is_connected() alone would miss it.
    if (!ssh_is_connected(session.get()) || (ssh_get_status(session.get()) & (SSH_CLOSED | SSH_CLOSED_ERROR)))
      break;
  }
  int code = conn.authenticated() ? kOk : kAuthFailed;
  conn.close();
  ssh_event_remove_session(event.get(), session.get());
  return code;
}

// A spare session was exec'd before its connection existed, with the IPC channel standing on
// descriptors 0 and 1: the connection, come with the hello, takes them.
Result<void> take_connection(const UniqueFd& connection) {
  if (!connection) return {};
  if (::dup2(connection.get(), kSessionTcpFd) < 0 || ::dup2(connection.get(), 1) < 0)
    return fail_errno("dup2");
  return {};
}

}  // namespace

int run_session() {
  // Our parent now is the broker, which set PR_SET_PDEATHSIG before the exec and checked it
  // was still there; the sandbox sets it again after the uid drop, which clears it.
  const pid_t broker_pid = ::getppid();
  std::signal(SIGPIPE, SIG_IGN);
  BrokerClient broker(kSessionIpcFd);
  route_logs_to(broker);
  try {
    auto seccomp = take_broker_seccomp_program();
    if (!seccomp) {
      log::error("no seccomp program from the broker: {}", seccomp.error().message);
      return kSetupFailed;
    }
    UniqueFd connection;
    auto hello = broker.hello(connection);
    if (!hello) {
      log::error("no hello from the broker: {}", hello.error().message);
      return kSetupFailed;
    }
    if (auto taken = take_connection(connection); !taken) {
      log::error("cannot take the connection: {}", taken.error().message);
      return kSetupFailed;
    }
    connection.reset();
    mark_login_step(LoginStep::hello);
    return serve_connection(broker, *hello, broker_pid, std::move(*seccomp));
  } catch (const std::exception& e) {
    log::error("session failed: {}", e.what());
    return kSetupFailed;
  }
}

}  // namespace xcg::gateway
