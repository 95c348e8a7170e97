// A self-signed certificate for the browser console's first start, made with OpenSSL's API.
#pragma once

#include <string>

#include "config/config.h"

namespace xcg::gateway {

struct PemPair {
  std::string cert_pem;
  std::string key_pem;  // PKCS#8
};

// A new P-256 key and a certificate for url's host (subjectAltName DNS or IP), valid for ten
// years from now, with a random serial. Throws std::runtime_error if OpenSSL fails.
PemPair make_self_signed(const config::PublicUrl& url);

}  // namespace xcg::gateway
