#include "gateway/session/seccomp_filter.h"

#include <fcntl.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>

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

Result<void> add_restricted(void* ctx, uint32_t own_pid) {
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
                   SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(own_pid)));
      !r)
    return r;
  return {};
}

Result<SeccompFilter> build_filter(Filter filter, uint32_t own_pid) {
  SeccompFilter ctx(seccomp_init(SCMP_ACT_KILL_PROCESS));
  if (!ctx) return fail(Errc::system, "seccomp_init failed");
  for (int sys : kAllowed)
    if (auto r = add(ctx.get(), SCMP_ACT_ALLOW, sys); !r) return tl::unexpected(r.error());
  if (filter == Filter::web)
    for (int sys : kAllowedForWeb)
      if (auto r = add(ctx.get(), SCMP_ACT_ALLOW, sys); !r) return tl::unexpected(r.error());
  for (int sys : kDeniedWithEacces)
    if (auto r = add(ctx.get(), SCMP_ACT_ERRNO(EACCES), sys); !r) return tl::unexpected(r.error());
  if (auto r = add_send_receive(ctx.get()); !r) return tl::unexpected(r.error());
  if (auto r = add_restricted(ctx.get(), own_pid); !r) return tl::unexpected(r.error());
  // glibc tries clone3 first and falls back; both end here anyway (default: kill).
  return ctx;
}

// A memfd, so that libseccomp writes the program where a session can read it.
Result<UniqueFd> export_to_memfd(const SeccompFilter& ctx) {
  UniqueFd fd(::memfd_create("xcg-seccomp", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return fail_errno("memfd_create");
  if (int rc = seccomp_export_bpf(ctx.get(), fd.get()); rc != 0)
    return fail(Errc::system, "seccomp_export_bpf failed: " + std::to_string(rc));
  return fd;
}

}  // namespace

Result<SeccompProgram> compile_seccomp_filter(Filter filter, uint32_t own_pid) {
  auto ctx = build_filter(filter, own_pid);
  if (!ctx) return tl::unexpected(ctx.error());
  auto fd = export_to_memfd(*ctx);
  if (!fd) return tl::unexpected(fd.error());
  return read_seccomp_instructions(fd->get());
}

Result<UniqueFd> seccomp_program_memfd(Filter filter) {
  auto ctx = build_filter(filter, kOwnPidPlaceholder);
  if (!ctx) return tl::unexpected(ctx.error());
  auto fd = export_to_memfd(*ctx);
  if (!fd) return tl::unexpected(fd.error());
  // Checked here, at start-up, rather than by every session.
  if (auto program = read_seccomp_program(fd->get(), ::getpid()); !program)
    return tl::unexpected(program.error());
  if (::fcntl(fd->get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0)
    return fail_errno("sealing the seccomp program");
  return fd;
}

Result<void> install_seccomp_filter(Filter filter) {
  auto fd = seccomp_program_memfd(filter);
  if (!fd) return tl::unexpected(fd.error());
  auto program = read_seccomp_program(fd->get(), ::getpid());
  if (!program) return tl::unexpected(program.error());
  return load_seccomp_program(*program);
}

}  // namespace xcg::gateway
