#include "base/child.h"

#include <sys/wait.h>

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
