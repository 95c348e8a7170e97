// Host keys: load them, or generate an Ed25519 key on first start.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace xcg::gateway {

// For each path: if the file is missing, generate an Ed25519 key there (mode 0600, parent
// directories created 0700). Returns the private keys as OpenSSH PEM text, for the session
// processes. Throws std::runtime_error naming the path on any failure, including a key file
// readable by group or others.
std::vector<std::string> load_or_create_host_keys(const std::vector<std::string>& paths);

// The SHA-256 fingerprint ("SHA256:...") of the first Ed25519 key among the host keys
// (load_or_create_host_keys' PEM text, and their paths for errors): the one a node registers
// and fronts pin, as a front logs in and pins with Ed25519 only. Throws std::runtime_error
// when there is none.
std::string ed25519_host_key_fingerprint(const std::vector<std::string>& pems,
                                         const std::vector<std::string>& paths);

// What operators publish for customers: for each host key, a known_hosts line per listen
// port ("[HOST]:PORT TYPE BASE64", plain "HOST" for port 22) and an SSHFP record
// ("HOST IN SSHFP ALG 2 SHA256HEX"). `host` defaults to this machine's host name.
std::vector<std::string> host_key_records(const config::Config& config, std::string host);

}  // namespace xcg::gateway
