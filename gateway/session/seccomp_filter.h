// Compiling the sessions' seccomp filter with libseccomp: in the broker, once, and in tests.
// Sessions only load the result (seccomp_program.h).
#pragma once

#include <cstdint>

#include "base/error.h"
#include "base/unique_fd.h"
#include "gateway/session/seccomp_program.h"

namespace xcg::gateway {

// The filter for a process whose pid is `own_pid`, as libseccomp exports it.
Result<SeccompProgram> compile_seccomp_filter(Filter filter, uint32_t own_pid);

// The filter compiled with kOwnPidPlaceholder, in a sealed memfd (close-on-exec) that the broker
// hands to each session as descriptor 4.
Result<UniqueFd> seccomp_program_memfd(Filter filter);

// Compiles and loads the filter for the calling process, by the sessions' path (the sandbox
// tests).
Result<void> install_seccomp_filter(Filter filter = Filter::session);

}  // namespace xcg::gateway
