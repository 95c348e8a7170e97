#include "gateway/session/process_setup.h"

#include <openssl/crypto.h>

namespace xcg::gateway {

bool set_up_session_process() {
  // OpenSSL would otherwise read and parse openssl.cnf on the first key import, in every
  // session. Nothing in it applies here: libssh uses libcrypto's default provider, and the
  // config's TLS settings are libssl's.
  return OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, nullptr) == 1;
}

}  // namespace xcg::gateway
