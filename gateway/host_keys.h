// Host keys: load them, or generate an Ed25519 key on first start.
#pragma once

#include <string>
#include <vector>

namespace xcg::gateway {

// For each path: if the file is missing, generate an Ed25519 key there (mode 0600, parent
// directories created 0700). Returns the private keys as OpenSSH PEM text, for the session
// processes. Throws std::runtime_error naming the path on any failure, including a key file
// readable by group or others.
std::vector<std::string> load_or_create_host_keys(const std::vector<std::string>& paths);

}  // namespace xcg::gateway
