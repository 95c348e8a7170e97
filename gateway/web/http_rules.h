// The HTTP rules of xcg-web (docs/web.md, "HTTP rules") as pure functions, so they can be
// tested without a socket: which target is served, the Host and Origin checks against
// public_url, and the headers every response carries.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "gateway/web/static_files.h"

namespace xcg::gateway::web {

// public_url split up: "https://console.example:8443" gives scheme https, host
// console.example, port 8443, authority "console.example:8443" (the port only when it is not
// the scheme's default).
struct PublicUrl {
  std::string scheme;  // "https" or "http"
  std::string host;    // lower case; an IPv6 address keeps its brackets
  uint16_t port = 0;
  std::string authority;
  std::string origin;  // scheme://authority
};
Result<PublicUrl> parse_public_url(std::string_view url);

// What a request gets, by method and target.
struct Route {
  enum class Kind { file, websocket, refused } kind = Kind::refused;
  unsigned status = 404;             // for refused: 404 or 405
  const StaticFile* file = nullptr;  // for file
};
Route route(std::string_view method, std::string_view target);

// A metrics session's answer (docs/metrics.md): 200 for GET /metrics, 405 for another method on
// it, 404 for any other target.
unsigned metrics_status(std::string_view method, std::string_view target);
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// The Host header names public_url's authority (host case-insensitive, the default port may be
// written or left out).
bool host_ok(std::string_view host, const PublicUrl& url);
// The Origin header is public_url's origin exactly (scheme, host, port).
bool origin_ok(std::string_view origin, const PublicUrl& url);

using Headers = std::vector<std::pair<std::string, std::string>>;
// The Content-Security-Policy, with connect-src wss://AUTHORITY.
std::string content_security_policy(const PublicUrl& url);
// What every response carries: the CSP and the other security headers, HSTS on a TLS listener,
// and Cache-Control (no-store unless `cacheable`, the /static/ files).
Headers security_headers(const PublicUrl& url, bool tls, bool cacheable);

// The client's address from X-Forwarded-For: its last entry (the one our proxy added), trimmed;
// "" if there is none or it is not a plausible address.
std::string forwarded_client(std::string_view x_forwarded_for);

inline constexpr std::string_view kSubprotocol = "xcg.v1";
// True if a Sec-WebSocket-Protocol header offers kSubprotocol.
bool offers_subprotocol(std::string_view header);

// True if an Accept-Encoding header admits gzip.
bool accepts_gzip(std::string_view accept_encoding);

}  // namespace xcg::gateway::web
