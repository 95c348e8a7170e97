#include "base/child.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "base/pidfd.h"

namespace xcg {

Result<Child> start_child(const std::function<void()>& in_child) {
  sigset_t all, old;
  sigfillset(&all);
  if (int err = ::pthread_sigmask(SIG_SETMASK, &all, &old); err != 0)
    return tl::unexpected(Error::from_errno("pthread_sigmask", err));
  pid_t pid = ::fork();
  int fork_errno = errno;
  if (pid == 0) {
    in_child();
    ::_exit(127);  // in_child returned without exec'ing: nothing of ours may run here
  }
  if (int err = ::pthread_sigmask(SIG_SETMASK, &old, nullptr); err != 0)
    log::error("restoring the signal mask after fork: {}", std::strerror(err));
  if (pid < 0) return tl::unexpected(Error::from_errno("fork", fork_errno));
  Child child;
  child.pid = pid;
  child.pidfd.reset(open_pidfd(pid));
  if (!child.pidfd) {
    auto error = Error::from_errno("pidfd_open");
    kill_and_reap(pid);
    return tl::unexpected(error);
  }
  return child;
}

void fail_in_child(const ExecSpec& spec, const char* step, int err) noexcept {
  if (spec.failure_prefix != nullptr && spec.fd_count > 2) {
    const char* reason = strerrordesc_np(err);
    const char* parts[] = {spec.failure_prefix, step, ": ", reason ? reason : "?", spec.line_end};
    for (const char* p : parts)
      if (::write(2, p, std::strlen(p)) < 0) break;  // nowhere left to report
  }
  ::_exit(spec.failure_status);
}

namespace {

// Each source is first lifted above the layout, so that laying one out never overwrites
// another still to come (a source may sit on 0..2 when the parent had those closed). dup2
// onto another number leaves the copy inheritable.
int lay_out(const ExecSpec& spec) noexcept {
  int lifted[ExecSpec::kMaxFds];
  int floor = static_cast<int>(spec.fd_count);
  for (size_t i = 0; i < spec.fd_count; ++i)
    if ((lifted[i] = ::fcntl(spec.fds[i], F_DUPFD, floor)) < 0) return errno;
  for (size_t i = 0; i < spec.fd_count; ++i)
    if (::dup2(lifted[i], static_cast<int>(i)) < 0) return errno;
  if (::close_range(static_cast<unsigned>(floor), ~0U, 0) < 0) return errno;
  return 0;
}

}  // namespace

void exec_child(const ExecSpec& spec) noexcept {
  if (spec.fd_count > ExecSpec::kMaxFds) ::_exit(spec.failure_status);
  if (int err = lay_out(spec); err != 0) fail_in_child(spec, "laying out descriptors", err);
  if (int err = reset_signals_in_child(); err != 0) fail_in_child(spec, "resetting signals", err);
  ::execve(spec.path, spec.argv, spec.envp);
  fail_in_child(spec, spec.path, errno);
}

int reset_signals_in_child() noexcept {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    // Fails with EINVAL for SIGKILL, SIGSTOP and libc-internal signals; those need no reset.
    if (::sigaction(sig, &dfl, nullptr) < 0 && errno != EINVAL) return errno;
  }
  sigset_t none;
  sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) < 0) return errno;
  return 0;
}

Result<siginfo_t> wait_child(int pidfd, bool block) {
  siginfo_t info{};
  int rc;
  do {
    rc = ::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED | (block ? 0 : WNOHANG));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return fail_errno("waitid");
  return info;
}

void kill_and_reap(pid_t pid) noexcept {
  if (::kill(pid, SIGKILL) < 0) log::warn("kill({}): {}", pid, std::strerror(errno));
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace xcg
