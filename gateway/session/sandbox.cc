#include "gateway/session/sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <memory>

namespace xcg::gateway {
namespace {

struct SeccompRelease {
  void operator()(void* ctx) const noexcept { seccomp_release(ctx); }
};
using SeccompFilter = std::unique_ptr<void, SeccompRelease>;

// Syscalls a logged-in or logging-in session makes: libssh's poll loop, OpenSSL, malloc, the
// IPC (sendmsg/recvmsg with SCM_RIGHTS, in add_send_receive) and process exit.
constexpr int kAllowed[] = {
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    SCMP_SYS(close),
    SCMP_SYS(shutdown),
    SCMP_SYS(getpeername),
    SCMP_SYS(getsockname),
    SCMP_SYS(brk),
    SCMP_SYS(munmap),
    SCMP_SYS(mremap),
    SCMP_SYS(madvise),
    SCMP_SYS(futex),
    SCMP_SYS(getrandom),
    SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_getres),
    SCMP_SYS(gettimeofday),
    SCMP_SYS(time),
    SCMP_SYS(nanosleep),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(sigaltstack),
    SCMP_SYS(getpid),
    SCMP_SYS(gettid),
    SCMP_SYS(getuid),
    SCMP_SYS(geteuid),
    SCMP_SYS(getgid),
    SCMP_SYS(getegid),
    SCMP_SYS(sched_yield),
    SCMP_SYS(restart_syscall),
    SCMP_SYS(lseek),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
};

// Asio's reactor in xcg-web: waiting on its epoll descriptor (epoll_pwait where there is no
// epoll_wait, e.g. arm64), (de)registering the console socket, arming its timerfd.
constexpr int kAllowedForWeb[] = {
    SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_pwait),
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(timerfd_settime),
};

// Probes by libc or OpenSSL (config files, /proc, /dev/urandom) fail softly rather than kill:
// OpenSSH learnt this when OpenSSL 1.1.1d began probing pre-auth. Reading a socket option is
// such a probe; setting one is not (it kills), and a confined session does neither: traced
// through logins, console attach and exec, the only ones are the broker's TCP_NODELAY before
// the fork and xcg-session's SO_TYPE check before the filter.
constexpr int kDeniedWithEacces[] = {
    SCMP_SYS(open),      SCMP_SYS(openat),     SCMP_SYS(stat),     SCMP_SYS(lstat),
    SCMP_SYS(fstat),     SCMP_SYS(newfstatat), SCMP_SYS(statx),    SCMP_SYS(access),
    SCMP_SYS(faccessat), SCMP_SYS(faccessat2), SCMP_SYS(readlink), SCMP_SYS(readlinkat),
    SCMP_SYS(uname),     SCMP_SYS(sysinfo),    SCMP_SYS(ioctl),    SCMP_SYS(rt_sigaction),
    SCMP_SYS(prctl),     SCMP_SYS(getsockopt),
};

// A rule for `syscall`, taken only when all the argument comparisons `cmp` hold (if any).
template <class... Cmp>
Result<void> add(void* ctx, uint32_t action, int syscall, Cmp... cmp) {
  if (seccomp_rule_add(ctx, action, syscall, sizeof...(cmp), cmp...) != 0)
    return fail(Errc::system, "seccomp_rule_add failed for syscall " + std::to_string(syscall));
  return {};
}

// send and receive with any flags but MSG_OOB (kills): urgent data has no use in SSH or the
// IPC, and its seldom-exercised paths in the kernel and in the peer's are attack surface only.
Result<void> add_send_receive(void* ctx) {
  for (int sys : {SCMP_SYS(sendto), SCMP_SYS(recvfrom)})  // flags: the fourth argument
    if (auto r = add(ctx, SCMP_ACT_ALLOW, sys, SCMP_A3(SCMP_CMP_MASKED_EQ, MSG_OOB, 0)); !r) return r;
  for (int sys : {SCMP_SYS(sendmsg), SCMP_SYS(recvmsg)})  // flags: the third argument
    if (auto r = add(ctx, SCMP_ACT_ALLOW, sys, SCMP_A2(SCMP_CMP_MASKED_EQ, MSG_OOB, 0)); !r) return r;
  return {};
}

Result<void> add_restricted(void* ctx) {
  // Memory may be mapped but never made executable (no JIT, no shellcode staging).
  for (int sys : {SCMP_SYS(mmap), SCMP_SYS(mprotect)})
    if (auto r = add(ctx, SCMP_ACT_ALLOW, sys, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)); !r) return r;
  // fcntl: only reading and setting file status flags (O_NONBLOCK).
  for (int cmd : {F_GETFL, F_SETFL, F_GETFD})
    if (auto r =
            add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), SCMP_A1(SCMP_CMP_EQ, static_cast<scmp_datum_t>(cmd)));
        !r)
      return r;
  // abort() signals itself; no signal may reach another process.
  if (auto r = add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill),
                   SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(::getpid())));
      !r)
    return r;
  return {};
}

Result<void> drop_privileges(const SandboxSpec& spec) {
  if (::chroot(spec.chroot_dir.c_str()) != 0) return fail_errno("chroot " + spec.chroot_dir);
  if (::chdir("/") != 0) return fail_errno("chdir /");
  if (::setgroups(0, nullptr) != 0) return fail_errno("setgroups");
  if (::setresgid(spec.gid, spec.gid, spec.gid) != 0) return fail_errno("setresgid");
  if (::setresuid(spec.uid, spec.uid, spec.uid) != 0) return fail_errno("setresuid");
  // Paranoia as in OpenSSH's permanently_set_uid: regaining root must be impossible.
  if (spec.uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0))
    return fail(Errc::system, "could regain root");
  return {};
}

// The kernel clears the parent-death signal when the uid or gid changes, so the broker's
// PR_SET_PDEATHSIG is gone after the drop and is set again here. A broker that died before that
// can no longer deliver it: the session was re-parented, and ends itself.
Result<void> die_with_broker(pid_t broker) {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return fail_errno("PR_SET_PDEATHSIG");
  if (::getppid() != broker) return fail(Errc::system, "the broker is gone");
  return {};
}

Result<void> set_limit(int resource, rlim_t value, const char* name) {
  rlimit rl{value, value};
  if (::setrlimit(resource, &rl) != 0) return fail_errno(std::string("setrlimit ") + name);
  return {};
}

}  // namespace

Result<void> install_seccomp_filter(Filter filter) {
  SeccompFilter ctx(seccomp_init(SCMP_ACT_KILL_PROCESS));
  if (!ctx) return fail(Errc::system, "seccomp_init failed");
  for (int sys : kAllowed)
    if (auto r = add(ctx.get(), SCMP_ACT_ALLOW, sys); !r) return r;
  if (filter == Filter::web)
    for (int sys : kAllowedForWeb)
      if (auto r = add(ctx.get(), SCMP_ACT_ALLOW, sys); !r) return r;
  for (int sys : kDeniedWithEacces)
    if (auto r = add(ctx.get(), SCMP_ACT_ERRNO(EACCES), sys); !r) return r;
  if (auto r = add_send_receive(ctx.get()); !r) return r;
  if (auto r = add_restricted(ctx.get()); !r) return r;
  // glibc tries clone3 first and falls back; both end here anyway (default: kill).
  if (int rc = seccomp_load(ctx.get()); rc != 0) return fail(Errc::system, "seccomp_load failed");
  return {};
}

Result<void> enter_sandbox(const SandboxSpec& spec) {
  if (spec.drop_privileges)
    if (auto r = drop_privileges(spec); !r) return r;
  if (auto r = die_with_broker(spec.broker); !r) return r;
  if (auto r = set_limit(RLIMIT_FSIZE, 0, "FSIZE"); !r) return r;
  if (auto r = set_limit(RLIMIT_NOFILE, static_cast<rlim_t>(spec.max_fds), "NOFILE"); !r) return r;
  if (auto r = set_limit(RLIMIT_NPROC, 0, "NPROC"); !r) return r;
  if (auto r = set_limit(RLIMIT_CORE, 0, "CORE"); !r) return r;  // a core would hold the host key
  if (::prctl(PR_SET_DUMPABLE, 0) != 0) return fail_errno("PR_SET_DUMPABLE");
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail_errno("PR_SET_NO_NEW_PRIVS");
  return install_seccomp_filter(spec.filter);
}

}  // namespace xcg::gateway
