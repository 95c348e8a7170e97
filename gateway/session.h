// The per-connection session process (`xcg session`): runs SSH for one TCP connection.
//
// Descriptor layout when it starts (set up by the broker before exec):
//   0 = the customer's TCP connection, 1 and 2 = /dev/null, 3 = IPC socket to the broker.
// It never opens the config or the hypervisor: everything it knows comes from the broker.
#pragma once

namespace xcg::gateway {

inline constexpr int kSessionTcpFd = 0;
inline constexpr int kSessionIpcFd = 3;

// Returns the process exit code.
int run_session();

}  // namespace xcg::gateway
