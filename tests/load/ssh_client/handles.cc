#include "tests/load/ssh_client/handles.h"

namespace xcg::ssh_client {

void SessionFree::operator()(ssh_session session) const noexcept {
  if (ssh_is_connected(session)) ssh_disconnect(session);
  ssh_free(session);
}

Key load_private_key(const std::string& path) {
  ssh_key key = nullptr;
  if (ssh_pki_import_privkey_file(path.c_str(), nullptr, nullptr, nullptr, &key) != SSH_OK) return nullptr;
  return Key(key);
}

Key generate_ed25519_key() {
  ssh_key key = nullptr;
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK) return nullptr;
  return Key(key);
}

}  // namespace xcg::ssh_client
