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

// start_child without copying the parent's page tables, as posix_spawn does: clone(CLONE_VM |
// CLONE_VFORK), so the child runs in the parent's memory, on a stack of its own, while the
// parent waits until it has exec'd or exited. `in_child` (given `arg`) must therefore be
// async-signal-safe, change nothing the parent uses, and exec or _exit. The pidfd comes with
// the clone (CLONE_PIDFD), not after it.
Result<Child> spawn_child(int (*in_child)(void*) noexcept, void* arg);

// For the child of start_child or spawn_child, before exec: every handler back to SIG_DFL and nothing
// blocked, as a freshly started program expects. Async-signal-safe. 0, or the errno of the
// step that failed.
int reset_signals_in_child() noexcept;

// What the child of start_child execs, and with which descriptors. Built in the parent: the
// child may not allocate.
struct ExecSpec {
  static constexpr size_t kMaxFds = 8;
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  // fds[i] becomes descriptor i, inheritable; every other descriptor is closed. The same
  // descriptor may be given for several.
  const int* fds = nullptr;
  size_t fd_count = 0;
  // A failed step is reported on the new descriptor 2 (when there is one) as
  // "<failure_prefix><step>: <reason><line_end>" (not at all without a prefix: descriptor 2
  // may be a channel that expects something else), and the child exits with failure_status.
  const char* failure_prefix = nullptr;
  const char* line_end = "\n";
  int failure_status = 127;
};

// The child's side of fork-and-exec, async-signal-safe: lays out the descriptors, closes the
// rest, resets the signals (reset_signals_in_child) and execs. Returns only by _exit.
[[noreturn]] void exec_child(const ExecSpec& spec) noexcept;
// Reports `step` failing with `err` as exec_child does, and exits; for a caller's own steps
// before exec_child.
[[noreturn]] void fail_in_child(const ExecSpec& spec, const char* step, int err) noexcept;

// Collects the exit of the child behind `pidfd`. Without `block`, info.si_pid is 0 while it has
// not exited yet.
Result<siginfo_t> wait_child(int pidfd, bool block);

// SIGKILL and reap, for a child nobody will follow.
void kill_and_reap(pid_t pid) noexcept;

}  // namespace xcg
