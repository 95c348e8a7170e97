#include "gateway/broker/session_spawner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>

#include "gateway/session/seccomp_filter.h"
#include "gateway/session/session.h"

namespace xcg::gateway {
namespace {

// What the child execs, built in the broker: the child shares the broker's memory until it
// execs (spawn_child), so it may not allocate.
struct SessionExec {
  ExecSpec spec;
  pid_t broker;
};

// In the child: the connection on 0 and 1 (as inetd would), the IPC channel on 2 and 3, the
// seccomp program on 4. A spare has no connection yet: the IPC channel stands on 0 and 1 until
// the hello brings it, so that nothing else can take those numbers.
int exec_session(void* arg) noexcept {
  const auto& exec = *static_cast<const SessionExec*>(arg);
  // A session must never outlive its broker; if the broker died before the prctl, the signal
  // will never come.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != exec.broker) ::_exit(126);
  // A storm of handshakes must not starve the broker, which serves every console.
  (void)::setpriority(PRIO_PROCESS, 0, 5);  // best effort: a failure only costs fairness
  exec_child(exec.spec);
}

// Found missing at start-up rather than by every connection's exec.
void check_session_program(const std::string& path) {
  if (path.empty() || path.front() != '/')
    throw std::runtime_error(fmt::format("session program '{}' is not an absolute path", path));
  if (::access(path.c_str(), X_OK) != 0)
    throw std::runtime_error(fmt::format("session program {}: {}", path, std::strerror(errno)));
}

// Sessions get none of the broker's environment, except sanitizer settings in test builds.
std::vector<std::string> session_environment(char** environ_) {
  std::vector<std::string> env;
  for (char** e = environ_; e && *e; ++e) {
    std::string_view v(*e);
    if (v.starts_with("ASAN_") || v.starts_with("UBSAN_") || v.starts_with("LSAN_")) env.emplace_back(v);
  }
  return env;
}

}  // namespace

ExecSessionSpawner::ExecSessionSpawner(std::string program, Filter filter) : program_(std::move(program)) {
  check_session_program(program_);
  auto seccomp = seccomp_program_memfd(filter);
  if (!seccomp) throw std::runtime_error("the sessions' seccomp program: " + seccomp.error().message);
  seccomp_ = std::move(*seccomp);
  arg0_ = program_.substr(program_.rfind('/') + 1);
  env_ = session_environment(environ);
  for (auto& e : env_) envp_.push_back(e.data());
  envp_.push_back(nullptr);
}

Result<SpawnedSession> ExecSessionSpawner::spawn(UniqueFd tcp) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return fail_errno("socketpair");
  UniqueFd ours(pair[0]), theirs(pair[1]);
  static_assert(kSessionTcpFd == 0 && kSessionIpcFd == 3 && kSessionSeccompFd == 4, "the layout below");
  const int conn = tcp ? tcp.get() : theirs.get();
  const int fds[] = {conn, conn, theirs.get(), theirs.get(), seccomp_.get()};
  char* argv[] = {arg0_.data(), nullptr};
  SessionExec exec{.spec = {.path = program_.c_str(),
                            .argv = argv,
                            .envp = envp_.data(),
                            .fds = fds,
                            .fd_count = std::size(fds),
                            .failure_status = 126},
                   .broker = ::getpid()};
  auto child = spawn_child(exec_session, &exec);
  if (!child) return tl::unexpected(child.error());
  return SpawnedSession{std::move(*child), std::move(ours)};
}

}  // namespace xcg::gateway
