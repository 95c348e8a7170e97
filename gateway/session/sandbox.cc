#include "gateway/session/sandbox.h"

#include <grp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>

namespace xcg::gateway {
namespace {

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
  return load_seccomp_program(spec.seccomp);
}

}  // namespace xcg::gateway
