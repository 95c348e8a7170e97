// The browser console's TLS pair: load it, or make a self-signed one on first start, as the
// SSH host keys are (host_keys.h).
#pragma once

#include <string>

#include "config/config.h"

namespace xcg::gateway {

struct WebTls {
  std::string chain_pem;    // the certificate chain, leaf first
  std::string key_pem;      // its private key (PKCS#8 PEM), for xcg-web's hello only
  std::string fingerprint;  // "SHA256:" + hex of the leaf's DER, for `xcg hostkeys` and the log
};

// Reads web.tls_cert and web.tls_key. If both are missing, makes a P-256 key (mode 0600) and
// a self-signed certificate for public_url's host and writes them there first. Throws
// std::runtime_error naming the path on any failure: one of the two missing, a key readable
// by group or others, a key that does not match the certificate.
WebTls load_or_make_web_tls(const config::WebSettings& web);

}  // namespace xcg::gateway
