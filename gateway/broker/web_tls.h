// The browser console's TLS pair and panel secret: load them, or make a self-signed pair on
// first start, as the SSH host keys are (host_keys.h).
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace xcg::gateway {

struct WebTls {
  std::string chain_pem;    // the certificate chain, leaf first
  std::string key_pem;      // its private key (PKCS#8 PEM), for xcg-web's hello only
  std::string fingerprint;  // "SHA256:" + hex of the leaf's DER, for `xcg hostkeys` and the log
};

// Reads web.tls_cert and web.tls_key. If both are missing, makes a P-256 key (mode 0600) and
// a self-signed certificate for public_url's host and writes them there first (parent
// directories created 0700). Throws std::runtime_error naming the path on any failure: one of
// the two missing, a key readable by group or others, a key that does not match the
// certificate.
WebTls load_or_make_web_tls(const config::WebSettings& web);

// The same without making a pair: both files must be there.
WebTls load_web_tls(const config::WebSettings& web);

// The file's bytes exactly (a trailing newline is part of the secret). Throws
// std::runtime_error naming the path, never the secret, unless the file is a regular file of
// at least 32 bytes, owned by root (or, when not running as root, by the current user), and
// neither readable nor writable by group or others.
std::string load_panel_secret(const std::string& path);

// What `xcg check` finds wrong with the files `web:` names: one TLS file without the other,
// a pair that does not load, a panel secret that breaks the rules above. Empty if none.
std::vector<std::string> web_file_problems(const config::WebSettings& web);

}  // namespace xcg::gateway
