// RAII owners for libssh handles.
#pragma once

#include <memory>

#include <libssh/libssh.h>
#include <libssh/server.h>

namespace xcg::gateway {

template <auto Free>
struct CDeleter {
  template <class T>
  void operator()(T* p) const noexcept {
    if (p) Free(p);
  }
};

using SshBind = std::unique_ptr<ssh_bind_struct, CDeleter<ssh_bind_free>>;
using SshSession = std::unique_ptr<ssh_session_struct, CDeleter<ssh_free>>;
using SshEvent = std::unique_ptr<ssh_event_struct, CDeleter<ssh_event_free>>;
using SshKey = std::unique_ptr<ssh_key_struct, CDeleter<ssh_key_free>>;

// libssh allocates these strings with malloc.
struct SshStringFree {
  void operator()(char* p) const noexcept { ssh_string_free_char(p); }
};
using SshString = std::unique_ptr<char, SshStringFree>;

}  // namespace xcg::gateway
