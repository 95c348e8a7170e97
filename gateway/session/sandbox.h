// Confinement of a session process, entered before it reads a byte from the network
// (OpenSSH's privsep_child_demote + sandbox-seccomp-filter). Layers, in order:
// chroot into an empty directory, drop to an unprivileged uid/gid, rlimits (no files, no
// processes, no core dumps), no_new_privs, and a seccomp filter that allows only what libssh,
// OpenSSL and the IPC need (compiled by the broker: seccomp_filter.h, seccomp_program.h).
#pragma once

#include <sys/types.h>

#include <string>

#include "base/error.h"
#include "gateway/session/seccomp_program.h"

namespace xcg::gateway {

struct SandboxSpec {
  bool drop_privileges = false;  // false when the broker runs unprivileged (development)
  uid_t uid = 0;
  gid_t gid = 0;
  std::string chroot_dir;
  int max_fds = 8;         // descriptors 0..max_fds-1 may exist; the console socket needs one
  pid_t broker = 0;        // getppid() when the session started: it must die with this process
  SeccompProgram seccomp;  // read_seccomp_program's, with the process's own pid in it
};

// Each step's failure is an error: a session that can't confine itself must not go on.
Result<void> enter_sandbox(const SandboxSpec& spec);

}  // namespace xcg::gateway
