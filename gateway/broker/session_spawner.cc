#include "gateway/broker/session_spawner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>

#include "gateway/session/session.h"

namespace xcg::gateway {
namespace {

// In the forked child: the connection on 0 and 1 (as inetd would), the IPC channel on 2 and 3.
[[noreturn]] void exec_session(int tcp, int ipc, const std::string& program, std::string& arg0,
                               char* const envp[], pid_t broker) {
  static_assert(kSessionTcpFd == 0 && kSessionIpcFd == 3, "the layout below");
  const int fds[] = {tcp, tcp, ipc, ipc};
  char* argv[] = {arg0.data(), nullptr};
  ExecSpec spec{
      .path = program.c_str(), .argv = argv, .envp = envp, .fds = fds, .fd_count = 4, .failure_status = 126};
  // A session must never outlive its broker; if the broker died before the prctl, the signal
  // will never come.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != broker) ::_exit(126);
  // A storm of handshakes must not starve the broker, which serves every console.
  (void)::setpriority(PRIO_PROCESS, 0, 5);  // best effort: a failure only costs fairness
  exec_child(spec);
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

ExecSessionSpawner::ExecSessionSpawner(std::string program) : program_(std::move(program)) {
  check_session_program(program_);
  arg0_ = program_.substr(program_.rfind('/') + 1);
  env_ = session_environment(environ);
  for (auto& e : env_) envp_.push_back(e.data());
  envp_.push_back(nullptr);
}

Result<SpawnedSession> ExecSessionSpawner::spawn(UniqueFd tcp) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return fail_errno("socketpair");
  UniqueFd ours(pair[0]), theirs(pair[1]);
  const pid_t broker = ::getpid();
  auto child =
      start_child([&] { exec_session(tcp.get(), theirs.get(), program_, arg0_, envp_.data(), broker); });
  if (!child) return tl::unexpected(child.error());
  return SpawnedSession{std::move(*child), std::move(ours)};
}

}  // namespace xcg::gateway
