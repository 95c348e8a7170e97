// xcg-web: the browser console's process, one per connection (docs/web.md). Only the broker
// runs it, with xcg-session's descriptor layout (gateway/session/session.h) and no arguments:
// hello, the TLS context and the loop, the sandbox, then the connection.
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <exception>

#include "base/log.h"
#include "base/wipe.h"
#include "gateway/session/broker_client.h"
#include "gateway/session/node_relay.h"
#include "gateway/session/sandbox.h"
#include "gateway/session/session.h"
#include "gateway/web/web_session.h"
#include "gateway/web/web_transport.h"

namespace xcg::gateway::web {
namespace {

// The session's descriptors (4), Asio's epoll, eventfd and timerfd, SessionWatch's epoll and the
// console socket (on a front: the node's), with room to spare.
constexpr int kMaxFds = 12;

bool started_by_broker() {
  int type = 0;
  socklen_t len = sizeof type;
  return ::getsockopt(kSessionIpcFd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET;
}

// On a fleet's front the console is the node's, reached as the front's SSH sessions reach it
// (docs/fleet.md, "Front to node"), with the front's key. The broker sends the key only with an
// accepted token, so the process holds it only from then on; `key` keeps it for the relay.
WebSession::MakeRelay relay_maker(BrokerClient& broker, bool front, SshKey& key) {
  if (!front) return nullptr;
  return [&broker, &key](Terminal& t, const Customer& c) -> std::unique_ptr<RelayCore> {
    auto keys = broker.front_key();
    if (!keys) {
      log::error("no front key from the broker: {}", keys.error().message);
      return nullptr;
    }
    try {
      key = load_front_key(keys->host_keys_pem);
    } catch (const std::exception& e) {
      log::error("{}", e.what());
    }
    wipe(keys->host_keys_pem);  // libssh holds the key now
    if (!key) return nullptr;
    return std::make_unique<NodeRelay>(t, broker, c, NodeRelay::Setup{key.get(), nullptr});
  };
}

// A metrics session's whole connection, from accept to the answer.
constexpr unsigned kMetricsDeadlineS = 10;

int serve(BrokerClient& broker, ipc::Hello& hello, pid_t broker_pid, SeccompProgram seccomp) {
  auto url = hello.metrics ? Result<PublicUrl>(PublicUrl{}) : parse_public_url(hello.public_url);
  if (!url) {
    log::error("bad public_url in the hello: {}", url.error().message);
    return kSetupFailed;
  }
  SshKey front_key;  // before the session: its relay borrows it
  WebSession session(broker, hello.idle_timeout_s, relay_maker(broker, hello.front, front_key));
  TransportSettings settings{hello.tls_chain_pem,
                             hello.tls_key_pem,
                             *url,
                             hello.trust_forwarded_for,
                             hello.metrics ? kMetricsDeadlineS : hello.login_grace_s,
                             hello.metrics};
  WebTransport transport(settings, broker, session);
  wipe(hello.tls_key_pem);  // OpenSSL holds the key now
  SandboxSpec spec{hello.drop_privileges, hello.uid, hello.gid, hello.chroot_dir, kMaxFds, broker_pid,
                   std::move(seccomp)};
  if (auto sandboxed = enter_sandbox(spec); !sandboxed) {
    log::error("cannot enter the sandbox: {}", sandboxed.error().message);
    return kSetupFailed;
  }
  return transport.run();  // from here on, the first byte from the network is read
}

int run_web() {
  const pid_t broker_pid = ::getppid();  // the sandbox checks it is still our parent
  std::signal(SIGPIPE, SIG_IGN);
  BrokerClient broker(kSessionIpcFd);
  log::set_sink(
      [&broker](log::Level level, std::string_view text) { broker.log(static_cast<int>(level), text); });
  try {
    auto seccomp = take_broker_seccomp_program();
    if (!seccomp) {
      log::error("no seccomp program from the broker: {}", seccomp.error().message);
      return kSetupFailed;
    }
    auto hello = broker.hello();
    if (!hello) {
      log::error("no hello from the broker: {}", hello.error().message);
      return kSetupFailed;
    }
    return serve(broker, *hello, broker_pid, std::move(*seccomp));
  } catch (const std::exception& e) {
    log::error("web session failed: {}", e.what());
    return kSetupFailed;
  }
}

}  // namespace
}  // namespace xcg::gateway::web

int main(int argc, char**) {
  if (argc > 1 || !xcg::gateway::web::started_by_broker()) {
    std::fputs(
        "xcg-web: the broker (xcg serve) starts this for each browser connection; it is not run by hand\n",
        stderr);
    return 2;
  }
  // _exit: exit handlers would make syscalls the sandbox forbids.
  ::_exit(xcg::gateway::web::run_web());
}
