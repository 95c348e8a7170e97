// RAII owners for libssh's key handles and the strings it allocates. Header-only: whoever
// includes it links libssh (the config library for key parsing, the gateway for the server).
#pragma once

#include <memory>

#include <libssh/libssh.h>

namespace xcg {

// Deleter for a C handle released by `Free`; a null handle is left alone.
template <auto Free>
struct CDeleter {
  template <class T>
  void operator()(T* p) const noexcept {
    if (p) Free(p);
  }
};

using SshKey = std::unique_ptr<ssh_key_struct, CDeleter<ssh_key_free>>;
// libssh allocates these C strings with malloc; ssh_string_free_char releases them.
using SshString = std::unique_ptr<char, CDeleter<ssh_string_free_char>>;

}  // namespace xcg
