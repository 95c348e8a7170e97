// The little cryptography an SSH client needs for curve25519-sha256, ssh-ed25519 and
// aes256-gcm@openssh.com, on OpenSSL's libcrypto.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include "base/error.h"

namespace xcg::badinput {

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string sha256(std::string_view data);

// A customer's Ed25519 key: from an unencrypted OpenSSH private key file, or made up.
class Ed25519Key {
 public:
  static Result<Ed25519Key> load(const std::string& path);
  static Result<Ed25519Key> generate();
  const std::string& public_blob() const { return blob_; }  // string "ssh-ed25519", string key
  Result<std::string> sign(std::string_view data) const;    // the SSH signature blob

 private:
  Pkey key_;
  std::string blob_;
};

// The client's half of one curve25519 exchange.
class X25519 {
 public:
  static Result<X25519> generate();
  const std::string& public_key() const { return public_; }
  Result<std::string> shared_secret(std::string_view peer_public) const;

 private:
  Pkey key_;
  std::string public_;
};

// Checks an ssh-ed25519 signature blob made with the host key blob over `data`.
Result<void> verify_host_signature(std::string_view host_key_blob, std::string_view signature_blob,
                                   std::string_view data);

// One direction of aes256-gcm@openssh.com: the 4-byte packet length is authenticated, not
// encrypted; the invocation counter (the IV's last 8 bytes) goes up by one per packet.
class GcmDirection {
 public:
  GcmDirection(std::string key, std::string iv);
  Result<std::string> seal(std::string_view length_field, std::string_view plain);  // cipher + tag
  Result<std::string> open(std::string_view length_field, std::string_view sealed);
  static constexpr size_t kTagSize = 16;

 private:
  void next_iv();
  std::string key_;
  std::string iv_;
};

}  // namespace xcg::badinput
