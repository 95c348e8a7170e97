// OpenSSH public keys: parsing "TYPE BASE64 [COMMENT]" lines and SHA256 fingerprints.
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"

namespace xcg::config {

struct PublicKey {
  std::string type;     // "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa", ...
  std::string blob;     // the decoded wire-format key (RFC 4253 §6.6)
  std::string comment;  // may be empty
  unsigned bits = 0;    // 256 for ed25519 and nistp256, RSA modulus size, ...

  // "SHA256:" + unpadded base64 of SHA-256(blob), exactly as `ssh-keygen -l` prints it.
  std::string fingerprint() const;
  // "TYPE BASE64" without the comment: the canonical form used as a lookup key.
  std::string openssh_line() const;
};

// Parses one authorized_keys-style line (no options prefix). Accepted types: ssh-ed25519,
// ecdsa-sha2-nistp256/384/521, ssh-rsa (modulus >= 2048 bits). libssh decodes and checks
// the key material (an ECDSA point must be on its curve); the blob must be in the canonical
// encoding. The error message says what is wrong ("unknown key type 'ssh-foo'", "RSA key
// has 1024 bits; at least 2048 are required").
Result<PublicKey> parse_public_key(std::string_view line);

// Same checks for a key that arrives as a type name and a raw blob (from the SSH layer).
Result<PublicKey> public_key_from_blob(std::string_view type, std::string_view blob);

std::string fingerprint_of_blob(std::string_view blob);

// SHA-256 of `blob` in lower-case hex, as an SSHFP record (fingerprint type 2) carries it.
std::string sha256_hex_of_blob(std::string_view blob);

}  // namespace xcg::config
