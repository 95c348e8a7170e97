// Child processes: started with every signal blocked across fork(), followed through a pidfd.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <functional>

#include "base/error.h"
#include "base/unique_fd.h"

namespace xcg {

struct Child {
  pid_t pid = -1;
  UniqueFd pidfd;  // readable when the child exits; collect it with wait_child
};

// fork() with every signal blocked across it, so that no handler of ours runs in the child
// before it resets them (reset_signals_in_child). `in_child` runs in the child and must exec
// or _exit. A child whose pidfd cannot be had is killed and reaped before the error returns.
Result<Child> start_child(const std::function<void()>& in_child);

// For the child of start_child, before exec: every handler back to SIG_DFL and nothing
// blocked, as a freshly started program expects. Async-signal-safe. 0, or the errno of the
// step that failed.
int reset_signals_in_child() noexcept;

// Collects the exit of the child behind `pidfd`. Without `block`, info.si_pid is 0 while it has
// not exited yet.
Result<siginfo_t> wait_child(int pidfd, bool block);

// SIGKILL and reap, for a child nobody will follow.
void kill_and_reap(pid_t pid) noexcept;

}  // namespace xcg
