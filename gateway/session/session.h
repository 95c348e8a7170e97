// The per-connection session process (`xcg-session`): runs SSH for one TCP connection.
//
// Descriptor layout when it starts (set up by the broker before exec), and nothing else:
//   0 and 1 = the customer's TCP connection, 2 and 3 = the IPC socket to the broker,
//   4 = the seccomp program (kSessionSeccompFd, seccomp_program.h), closed once read.
// A spare session (the broker's spare_pool.h) starts with the IPC socket on 0 and 1 as well, and
// gets its connection with the hello, which it dup2s onto 0 and 1.
// fd 2 is the IPC socket, not a log file, so a stray write to stderr reaches the broker as a
// malformed message and ends this session instead of leaking anywhere.
// It never opens the config or the hypervisor: everything it knows comes from the broker.
#pragma once

namespace xcg::gateway {

inline constexpr int kSessionTcpFd = 0;
inline constexpr int kSessionIpcFd = 3;

// Returns the process exit code.
int run_session();

}  // namespace xcg::gateway
