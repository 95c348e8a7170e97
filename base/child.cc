#include "base/child.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "base/pidfd.h"

namespace xcg {
namespace {

// Every signal blocked while it lives, so that none of our handlers runs in a new child.
class SignalsBlocked {
 public:
  SignalsBlocked() {
    sigset_t all;
    sigfillset(&all);
    error_ = ::pthread_sigmask(SIG_SETMASK, &all, &old_);
  }
  ~SignalsBlocked() {
    if (error_ != 0) return;
    if (int err = ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); err != 0)
      log::error("restoring the signal mask after starting a child: {}", std::strerror(err));
  }
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;
  int error() const { return error_; }

 private:
  sigset_t old_;
  int error_;
};

// The stack a spawn_child child runs on until it execs. Pages it never touches cost nothing.
class ChildStack {
 public:
  static constexpr size_t kSize = 256 * 1024;
  ChildStack()
      : base_(::mmap(nullptr, kSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0)) {}
  ~ChildStack() {
    if (base_ != MAP_FAILED) ::munmap(base_, kSize);
  }
  ChildStack(const ChildStack&) = delete;
  ChildStack& operator=(const ChildStack&) = delete;
  bool ok() const { return base_ != MAP_FAILED; }
  void* top() const { return static_cast<char*>(base_) + kSize; }

 private:
  void* base_;
};

}  // namespace

Result<Child> spawn_child(int (*in_child)(void*) noexcept, void* arg) {
  ChildStack stack;
  if (!stack.ok()) return fail_errno("mmap for a child's stack");
  int pidfd = -1;
  pid_t pid;
  {
    SignalsBlocked blocked;
    if (blocked.error() != 0) return tl::unexpected(Error::from_errno("pthread_sigmask", blocked.error()));
    pid = ::clone(in_child, stack.top(), CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, arg, &pidfd);
    if (pid < 0) return fail_errno("clone");
  }
  Child child;
  child.pid = pid;
  child.pidfd.reset(pidfd);
  return child;
}

Result<Child> start_child(const std::function<void()>& in_child) {
  pid_t pid;
  int fork_errno;
  {
    SignalsBlocked blocked;
    if (blocked.error() != 0) return tl::unexpected(Error::from_errno("pthread_sigmask", blocked.error()));
    pid = ::fork();
    fork_errno = errno;
    if (pid == 0) {
      in_child();
      ::_exit(127);  // in_child returned without exec'ing: nothing of ours may run here
    }
  }
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
