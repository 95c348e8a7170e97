// RAII owners for libssh's server and client handles; keys and strings are in base/ssh_handles.h.
#pragma once

#include <memory>

#include <libssh/libssh.h>
#include <libssh/server.h>

#include "base/ssh_handles.h"

namespace xcg::gateway {

using xcg::CDeleter;
using xcg::SshKey;
using xcg::SshString;

using SshBind = std::unique_ptr<ssh_bind_struct, CDeleter<ssh_bind_free>>;
using SshSession = std::unique_ptr<ssh_session_struct, CDeleter<ssh_free>>;
using SshEvent = std::unique_ptr<ssh_event_struct, CDeleter<ssh_event_free>>;
using SshChannel = std::unique_ptr<ssh_channel_struct, CDeleter<ssh_channel_free>>;

}  // namespace xcg::gateway
