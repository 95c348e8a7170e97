#include "gateway/session/ssh_options.h"

#include <stdexcept>
#include <string>

namespace xcg::gateway {
namespace {

// No DH group exchange (it opens /etc/ssh/moduli mid-handshake) and no classic DH groups
// (libssh 0.10 does not validate the peer's public value).
constexpr const char* kKex =
    "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,"
    "ecdh-sha2-nistp384,ecdh-sha2-nistp521";
constexpr const char* kCiphers =
    "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,"
    "aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr";
constexpr const char* kMacs = "hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com";
constexpr const char* kHostKeyAlgorithms =
    "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,"
    "ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256";
// Setting this is what makes libssh 0.10 refuse SHA-1 "ssh-rsa" signatures.
constexpr const char* kUserKeyAlgorithms =
    "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,"
    "ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256";
// Sent as "SSH-2.0-xcg": no library or version for scanners to match.
constexpr const char* kBanner = "xcg";

void set(ssh_bind bind, ssh_bind_options_e option, const void* value, const char* name) {
  if (ssh_bind_options_set(bind, option, value) != SSH_OK)
    throw std::runtime_error(std::string("cannot set SSH option ") + name);
}

void set(ssh_session session, ssh_options_e option, const void* value, const char* name) {
  if (ssh_options_set(session, option, value) != SSH_OK)
    throw std::runtime_error(std::string("cannot set SSH option ") + name);
}

}  // namespace

void apply_bind_options(ssh_bind bind) {
  bool no = false;
  int rsa_min = 2048;
  set(bind, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no, "process_config");  // no /etc/ssh/libssh_server_config
  set(bind, SSH_BIND_OPTIONS_KEY_EXCHANGE, kKex, "kex");
  set(bind, SSH_BIND_OPTIONS_CIPHERS_C_S, kCiphers, "ciphers");
  set(bind, SSH_BIND_OPTIONS_CIPHERS_S_C, kCiphers, "ciphers");
  set(bind, SSH_BIND_OPTIONS_HMAC_C_S, kMacs, "macs");
  set(bind, SSH_BIND_OPTIONS_HMAC_S_C, kMacs, "macs");
  set(bind, SSH_BIND_OPTIONS_HOSTKEY_ALGORITHMS, kHostKeyAlgorithms, "hostkey algorithms");
  set(bind, SSH_BIND_OPTIONS_PUBKEY_ACCEPTED_KEY_TYPES, kUserKeyAlgorithms, "pubkey types");
  set(bind, SSH_BIND_OPTIONS_RSA_MIN_SIZE, &rsa_min, "rsa min size");
  set(bind, SSH_BIND_OPTIONS_BANNER, kBanner, "banner");
}

void apply_session_options(ssh_session session) {
  // "none" only: the default also allows zlib after authentication.
  set(session, SSH_OPTIONS_COMPRESSION_C_S, "none", "compression");
  set(session, SSH_OPTIONS_COMPRESSION_S_C, "none", "compression");
}

}  // namespace xcg::gateway
