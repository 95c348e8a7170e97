// A session's seccomp filter as a ready BPF program. The broker compiles it once with libseccomp
// (seccomp_filter.h) and hands it to each session on descriptor 4; the session checks it, puts
// its own pid in, and loads it, without libseccomp.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstdint>
#include <vector>

#include "base/error.h"

namespace xcg::gateway {

inline constexpr int kSessionSeccompFd = 4;

// Which filter: xcg-web's is the session's plus what Asio's reactor needs on its own
// descriptors (docs/web.md, "Sandbox of xcg-web").
enum class Filter { session, web };

using SeccompProgram = std::vector<sock_filter>;

// The filter lets a process signal only itself (abort), so it holds the process's own pid. The
// broker compiles it with this instead: above any pid the kernel hands out (at most 2^22), so
// the one comparison against it is found and replaced by the session's own.
inline constexpr uint32_t kOwnPidPlaceholder = 0x7eadbeef;

// Reads the instructions from `fd` (from offset 0: the descriptor's offset is shared by every
// session), as they are. An error if there are none, or not whole ones, or more than the
// kernel takes.
Result<SeccompProgram> read_seccomp_instructions(int fd);

// Reads the program from `fd` (from offset 0: the descriptor's offset is shared by every
// session) and puts `own_pid` in the placeholder's place. An error if it is missing, of a size
// that is not whole instructions or more than the kernel takes, or does not hold the
// placeholder exactly once.
Result<SeccompProgram> read_seccomp_program(int fd, pid_t own_pid);

// Puts `own_pid` where the placeholder is; an error unless it is there exactly once.
Result<void> put_own_pid(SeccompProgram& program, pid_t own_pid);

// In a session: the program the broker gave on kSessionSeccompFd, for this process; the
// descriptor is closed either way.
Result<SeccompProgram> take_broker_seccomp_program();

// seccomp(SECCOMP_SET_MODE_FILTER); needs no_new_privs (or CAP_SYS_ADMIN) first.
Result<void> load_seccomp_program(const SeccompProgram& program);

}  // namespace xcg::gateway
