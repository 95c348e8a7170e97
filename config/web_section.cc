#include "config/web_section.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <sys/un.h>

#include <algorithm>

#include "config/values.h"

namespace xcg::config {
namespace {

constexpr long long kMaxLinkTtl = 600;  // web_tokens' longest lifetime
constexpr std::string_view kPlain = "http://";
constexpr std::string_view kUnix = "unix:";
constexpr size_t kMaxUnixPath = sizeof(sockaddr_un::sun_path);

// A plain listener "http://HOST:PORT": only on loopback, behind a proxy on this host.
Result<ListenAddress> parse_plain(std::string_view text) {
  auto address = parse_listen_address(text.substr(kPlain.size()));
  if (!address) return address;
  address->text = std::string(text);
  if (is_loopback(*address)) return address;
  return fail(Errc::invalid_input,
              fmt::format("plain HTTP '{}' is allowed only on loopback (127.0.0.0/8 or [::1]), behind a "
                          "proxy on this host; a TLS listener is written HOST:PORT",
                          text));
}

// "https://" is a common slip for TLS.
Result<ListenAddress> parse_web_listen(std::string_view text) {
  if (text.starts_with(kPlain)) return parse_plain(text);
  if (text.starts_with(kUnix)) return parse_unix_listen(text);
  if (text.starts_with("https://"))
    return fail(Errc::invalid_input,
                fmt::format("'{}': write a TLS listener as HOST:PORT, without https://", text));
  return parse_listen_address(text);
}

bool plain(const ListenAddress& a) { return !a.unix_path.empty() || a.text.starts_with(kPlain); }

bool read_listen(Loader& in, const Field& f, WebSettings& web) {
  auto items = read_strings(in, f, true);
  if (!items) return false;
  size_t bad = 0;
  for (const auto& [text, node] : *items) {
    auto address = parse_web_listen(text);
    if (address) {
      (plain(*address) ? web.plain_listen : web.listen).push_back(*address);
      continue;
    }
    in.report(node.Mark(), fmt::format("{}: {}", name_of(f), address.error().message));
    ++bad;
  }
  return bad == 0;
}

bool read_public_url(Loader& in, const Field& f, WebSettings& web) {
  auto text = read_value(in, f, Text{.nonempty = true});
  if (!text) return false;
  auto url = parse_public_url(*text);
  if (!url) {
    in.report(mark_of(f), fmt::format("{}: {}", name_of(f), url.error().message));
    return false;
  }
  web.public_url = url->normal;
  return true;
}

bool read_trusted_proxies(Loader& in, const Field& f, WebSettings& web) {
  auto items = read_strings(in, f, false);
  if (!items) return false;
  size_t bad = 0;
  for (const auto& [text, node] : *items) {
    auto cidr = parse_cidr(text);
    if (cidr) {
      web.trusted_proxies.push_back(*cidr);
      continue;
    }
    in.report(node.Mark(), fmt::format("{}: bad network '{}': expected ADDRESS/PREFIX with no bits set "
                                       "below the prefix, like 127.0.0.1/32 or ::1/128",
                                       name_of(f), text));
    ++bad;
  }
  return bad == 0;
}

bool loopback_host(const PublicUrl& url) {
  if (url.host == "localhost") return true;
  if (!url.ip) return false;
  return is_loopback(ListenAddress{.host = url.host, .ipv6 = url.ipv6});
}

// http:// would send the token in clear unless the proxy in front is on this very host.
void check_public_url(Loader& in, const Outcome& read, WebSettings& web) {
  auto field = read.ok("public_url");
  if (!field || !read.ok("listen")) return;
  auto url = parse_public_url(web.public_url);
  if (!url || url->https) return;
  if (!web.listen.empty())
    in.report(mark_of(*field),
              "public_url: http:// only when every listener is plain HTTP "
              "(http://...); TLS listeners need https://");
  else if (!loopback_host(*url))
    in.report(mark_of(*field), fmt::format("public_url: http:// only for a loopback host (localhost, "
                                           "127.0.0.0/8 or [::1]), got '{}'; customers use https://",
                                           url->host));
}

struct Network {
  int family;
  unsigned char bytes[sizeof(in6_addr)];
  unsigned bits;
};

bool host_bits_clear(const Network& n, long long prefix) {
  for (unsigned i = 0; i < n.bits / 8; ++i) {
    long long first = i * 8;
    unsigned keep = prefix >= first + 8 ? 8 : prefix <= first ? 0 : unsigned(prefix - first);
    unsigned char mask = keep == 0 ? 0 : static_cast<unsigned char>(0xff << (8 - keep));
    if (n.bytes[i] & ~mask) return false;
  }
  return true;
}

}  // namespace

// A plain listener "unix:PATH" for a proxy on this host; who may connect is up to the socket's
// directory (the socket takes its group), so the path must be absolute and fit a sockaddr_un.
Result<ListenAddress> parse_unix_listen(std::string_view text) {
  std::string path(text.substr(kUnix.size()));
  if (path.empty() || path.front() != '/' || path.back() == '/')
    return fail(Errc::invalid_input, fmt::format("'{}': a unix socket is written unix:/ABSOLUTE/PATH", text));
  if (path.size() >= kMaxUnixPath)
    return fail(Errc::invalid_input,
                fmt::format("'{}': a unix socket path has at most {} bytes", text, kMaxUnixPath - 1));
  return ListenAddress{.text = std::string(text), .unix_path = std::move(path)};
}

std::optional<std::string> parse_cidr(std::string_view text) {
  auto slash = text.find('/');
  std::string address(text.substr(0, slash));
  Network n{};
  n.family = address.find(':') == std::string::npos ? AF_INET : AF_INET6;
  n.bits = n.family == AF_INET ? 32 : 128;
  if (::inet_pton(n.family, address.c_str(), n.bytes) != 1) return std::nullopt;
  auto prefix = slash == std::string_view::npos ? std::optional<long long>(n.bits)
                                                : parse_unsigned(text.substr(slash + 1));
  if (!prefix || *prefix > n.bits || !host_bits_clear(n, *prefix)) return std::nullopt;
  char out[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(n.family, n.bytes, out, sizeof out);
  return fmt::format("{}/{}", out, *prefix);
}

const Table<WebSettings>& web_table() {
  static const Table<WebSettings> table{
      {
          required(custom("listen", read_listen)),
          required(custom("public_url", read_public_url)),
          field("tls_cert", AbsolutePath{}, &WebSettings::tls_cert),
          field("tls_key", AbsolutePath{}, &WebSettings::tls_key),
          field("link_ttl", Duration{1, kMaxLinkTtl}, &WebSettings::link_ttl_s),
          field("panel_secret_file", AbsolutePath{}, &WebSettings::panel_secret_file),
          custom("trusted_proxies", read_trusted_proxies),
      },
      check_public_url};
  return table;
}

bool read_web(Loader& in, const Field& f, Config& c) {
  auto entries = in.entries(f);
  if (!entries) return false;
  WebSettings web;
  auto out = read_table(in, *entries, f.value, web_table(), web);
  c.web = std::move(web);
  return out.failed.empty();
}

}  // namespace xcg::config
