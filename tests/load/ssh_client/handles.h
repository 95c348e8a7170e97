// RAII owners of libssh's client-side handles, for the load test and the benchmark's load
// generator.
#pragma once

#include <libssh/libssh.h>

#include <memory>
#include <string>

namespace xcg::ssh_client {

struct SessionFree {
  void operator()(ssh_session session) const noexcept;  // disconnects first if connected
};
struct ChannelFree {
  void operator()(ssh_channel channel) const noexcept { ssh_channel_free(channel); }
};
struct KeyFree {
  void operator()(ssh_key key) const noexcept { ssh_key_free(key); }
};

using Session = std::unique_ptr<ssh_session_struct, SessionFree>;
using Channel = std::unique_ptr<ssh_channel_struct, ChannelFree>;
using Key = std::unique_ptr<ssh_key_struct, KeyFree>;

// A private key file without a passphrase; empty if it cannot be read.
Key load_private_key(const std::string& path);
// A new ed25519 key pair; empty on failure.
Key generate_ed25519_key();

// libssh's global state for the life of the process: ssh_init, and ssh_finalize at the end.
class Libssh {
 public:
  Libssh() : ok_(ssh_init() == SSH_OK) {}
  ~Libssh() {
    if (ok_) ssh_finalize();
  }
  Libssh(const Libssh&) = delete;
  Libssh& operator=(const Libssh&) = delete;
  bool ok() const { return ok_; }

 private:
  bool ok_;
};

}  // namespace xcg::ssh_client
