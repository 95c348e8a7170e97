// pidfd_open(2). glibc 2.36's <sys/pidfd.h> lacks extern "C", so C++ can't link against it.
#pragma once

#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

namespace xcg {

// A descriptor that becomes readable when process `pid` exits (reap it with waitid P_PIDFD).
inline int open_pidfd(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

}  // namespace xcg
