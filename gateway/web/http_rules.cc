#include "gateway/web/http_rules.h"

#include <algorithm>
#include <charconv>
#include <optional>

namespace xcg::gateway::web {
namespace {

struct Authority {
  std::string host;
  uint16_t port = 0;
};

std::string lower(std::string_view s) {
  std::string out(s);
  std::ranges::transform(out, out.begin(),
                         [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool host_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-'; }

std::optional<uint16_t> parse_port(std::string_view s) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || value == 0 || value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

// "HOST[:PORT]" or "[V6][:PORT]"; the port defaults to `default_port`.
std::optional<Authority> parse_authority(std::string_view s, uint16_t default_port) {
  size_t host_end = 0;
  if (s.starts_with('[')) {
    host_end = s.find(']');
    if (host_end == std::string_view::npos) return std::nullopt;
    ++host_end;
    auto inside = s.substr(1, host_end - 2);
    if (inside.empty() || !std::ranges::all_of(inside, [](char c) {
          return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
        }))
      return std::nullopt;
  } else {
    host_end = std::min(s.find(':'), s.size());
    if (host_end == 0 || !std::all_of(s.begin(), s.begin() + host_end, host_char)) return std::nullopt;
  }
  Authority a{lower(s.substr(0, host_end)), default_port};
  auto rest = s.substr(host_end);
  if (rest.empty()) return a;
  if (rest.front() != ':') return std::nullopt;
  auto port = parse_port(rest.substr(1));
  if (!port) return std::nullopt;
  a.port = *port;
  return a;
}

uint16_t default_port(std::string_view scheme) { return scheme == "https" ? 443 : 80; }

// "SCHEME://AUTHORITY" split into its scheme and authority, or nullopt.
std::optional<std::pair<std::string, Authority>> parse_origin(std::string_view s) {
  auto sep = s.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  std::string scheme = lower(s.substr(0, sep));
  if (scheme != "https" && scheme != "http") return std::nullopt;
  auto a = parse_authority(s.substr(sep + 3), default_port(scheme));
  if (!a) return std::nullopt;
  return std::pair{scheme, *a};
}

bool plausible_address(std::string_view s) {
  return !s.empty() && s.size() <= 45 && std::ranges::all_of(s, [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) || c == '.' || c == ':';
  });
}

}  // namespace

Result<PublicUrl> parse_public_url(std::string_view url) {
  if (url.ends_with('/')) url.remove_suffix(1);
  auto parsed = parse_origin(url);
  if (!parsed) return fail(Errc::invalid_input, "public_url must be http(s)://HOST[:PORT]");
  auto& [scheme, a] = *parsed;
  PublicUrl u{scheme, a.host, a.port, a.host, {}};
  if (a.port != default_port(scheme)) u.authority += ":" + std::to_string(a.port);
  u.origin = scheme + "://" + u.authority;
  return u;
}

Route route(std::string_view method, std::string_view target) {
  if (method != "GET") return {Route::Kind::refused, 405, nullptr};
  if (target == "/ws") return {Route::Kind::websocket, 101, nullptr};
  // A query string is never ours: the token travels in the fragment, which is not sent.
  if (const StaticFile* f = find_static_file(target); f != nullptr) return {Route::Kind::file, 200, f};
  return {Route::Kind::refused, 404, nullptr};
}

unsigned metrics_status(std::string_view method, std::string_view target) {
  if (target != "/metrics") return 404;
  return method == "GET" ? 200 : 405;
}

bool host_ok(std::string_view host, const PublicUrl& url) {
  auto a = parse_authority(trim(host), default_port(url.scheme));
  return a && a->host == url.host && a->port == url.port;
}

bool origin_ok(std::string_view origin, const PublicUrl& url) {
  auto o = parse_origin(trim(origin));
  return o && o->first == url.scheme && o->second.host == url.host && o->second.port == url.port;
}

std::string content_security_policy(const PublicUrl& url) {
  return "default-src 'none'; script-src 'self'; "
         "style-src 'self' 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='; img-src 'self'; "
         "font-src 'self'; connect-src wss://" +
         url.authority + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
}

Headers security_headers(const PublicUrl& url, bool tls, bool cacheable) {
  Headers h{
      {"Content-Security-Policy", content_security_policy(url)},
      {"Referrer-Policy", "no-referrer"},
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Cross-Origin-Opener-Policy", "same-origin"},
      {"Cross-Origin-Resource-Policy", "same-origin"},
      {"Cache-Control", cacheable ? "max-age=86400" : "no-store"},
  };
  if (tls) h.emplace_back("Strict-Transport-Security", "max-age=31536000");
  return h;
}

std::string forwarded_client(std::string_view x_forwarded_for) {
  auto comma = x_forwarded_for.rfind(',');
  auto last = trim(comma == std::string_view::npos ? x_forwarded_for : x_forwarded_for.substr(comma + 1));
  return plausible_address(last) ? std::string(last) : std::string();
}

bool offers_subprotocol(std::string_view header) {
  while (!header.empty()) {
    auto comma = std::min(header.find(','), header.size());
    if (trim(header.substr(0, comma)) == kSubprotocol) return true;
    header.remove_prefix(std::min(comma + 1, header.size()));
  }
  return false;
}

bool accepts_gzip(std::string_view accept_encoding) {
  while (!accept_encoding.empty()) {
    auto comma = std::min(accept_encoding.find(','), accept_encoding.size());
    auto item = accept_encoding.substr(0, comma);
    accept_encoding.remove_prefix(std::min(comma + 1, accept_encoding.size()));
    auto semi = std::min(item.find(';'), item.size());
    if (lower(trim(item.substr(0, semi))) != "gzip") continue;
    auto params = lower(item.substr(semi));
    auto q = params.find("q=");
    if (q == std::string::npos) return true;
    auto value = params.substr(q + 2, params.find(';', q) - q - 2);
    return value.find_first_of("123456789") != std::string::npos;  // q=0, q=0.0: refused
  }
  return false;
}

}  // namespace xcg::gateway::web
