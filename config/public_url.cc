// web.public_url: the one address links point to and the Host and Origin headers must name.
#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "config/config.h"

namespace xcg::config {
namespace {

tl::unexpected<Error> bad(std::string_view text, std::string_view why) {
  return fail(Errc::invalid_input, fmt::format("'{}': {}", text, why));
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool is_address(const std::string& host, int family) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(family, host.c_str(), buf) == 1;
}

// RFC 1123 host name: labels of letters, digits and '-', not starting or ending with '-'.
bool is_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;
  for (size_t i = 0; i <= name.size(); ++i) {
    bool end = i == name.size() || name[i] == '.';
    if (end) {
      if (label == 0 || label > 63 || name[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    char c = name[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && !(c == '-' && label > 0)) return false;
    ++label;
  }
  return true;
}

std::optional<uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5 || text[0] == '0') return std::nullopt;
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

// Splits "HOST[:PORT]" or "[V6][:PORT]" into host and port text; false if malformed.
bool split_authority(std::string_view authority, PublicUrl& url, std::string_view& port) {
  if (authority.starts_with('[')) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return false;
    url.host = lower(authority.substr(1, close - 1));
    url.ipv6 = true;
    auto rest = authority.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) return false;
    port = rest.empty() ? rest : rest.substr(1);
    return is_address(url.host, AF_INET6);
  }
  auto colon = authority.find(':');
  url.host = lower(authority.substr(0, colon));
  port = colon == std::string_view::npos ? std::string_view() : authority.substr(colon + 1);
  if (colon != std::string_view::npos && port.empty()) return false;
  return is_address(url.host, AF_INET) || is_dns_name(url.host);
}

Result<PublicUrl> parse_authority(std::string_view text, std::string_view authority, PublicUrl url) {
  std::string_view port;
  if (!split_authority(authority, url, port))
    return bad(text, "the host must be a DNS name, an IPv4 address or [IPV6]");
  url.ip = url.ipv6 || is_address(url.host, AF_INET);
  if (!port.empty()) {
    auto number = parse_port(port);
    if (!number) return bad(text, "the port must be a number from 1 to 65535");
    url.port = *number == (url.https ? 443 : 80) ? 0 : *number;
  }
  std::string host = url.ipv6 ? "[" + url.host + "]" : url.host;
  url.authority = url.port ? fmt::format("{}:{}", host, url.port) : host;
  url.normal = fmt::format("{}://{}", url.https ? "https" : "http", url.authority);
  return url;
}

}  // namespace

Result<PublicUrl> parse_public_url(std::string_view text) {
  PublicUrl url;
  auto scheme_end = text.find("://");
  auto scheme = lower(text.substr(0, scheme_end));
  if (scheme_end == std::string_view::npos || (scheme != "https" && scheme != "http"))
    return bad(text, "expected https://HOST[:PORT]");
  url.https = scheme == "https";
  auto rest = text.substr(scheme_end + 3);
  auto path = rest.find_first_of("/?#");
  auto authority = rest.substr(0, path);
  auto tail = path == std::string_view::npos ? std::string_view() : rest.substr(path);
  if (tail.find_first_of("?#") != std::string_view::npos)
    return bad(text, "no query (?) or fragment (#) allowed: the page is at the root");
  if (!tail.empty() && tail != "/") return bad(text, "no path allowed: the page is at the root");
  if (authority.find('@') != std::string_view::npos) return bad(text, "no user name (@) allowed");
  return parse_authority(text, authority, url);
}

}  // namespace xcg::config
