// The SSH algorithms and options xcg offers: modern only, everything explicit.
#pragma once

#include <libssh/libssh.h>
#include <libssh/server.h>

namespace xcg::gateway {

// Throws std::runtime_error if libssh rejects any option (an empty list, a typo).
void apply_bind_options(ssh_bind bind);
void apply_session_options(ssh_session session);

}  // namespace xcg::gateway
