#include <arpa/inet.h>
#include <fmt/format.h>

#include "config/config.h"

namespace xcg::config {
namespace {

bool is_numeric_host(const std::string& host, int family) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(family, host.c_str(), buf) == 1;  // 0: malformed; -1 cannot happen here
}

std::optional<uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

}  // namespace

bool is_loopback(const ListenAddress& address) {
  if (address.ipv6) {
    in6_addr a{};
    return ::inet_pton(AF_INET6, address.host.c_str(), &a) == 1 && IN6_IS_ADDR_LOOPBACK(&a);
  }
  return address.host.starts_with("127.") && is_numeric_host(address.host, AF_INET);
}

Result<ListenAddress> parse_listen_address(std::string_view text) {
  auto bad_address = [&] {
    return fail(Errc::invalid_input,
                fmt::format("bad listen address '{}': expected IPV4:PORT or [IPV6]:PORT", text));
  };
  ListenAddress out;
  out.text = std::string(text);
  std::string_view port;
  if (text.starts_with('[')) {
    auto close = text.find("]:");
    if (close == std::string_view::npos) return bad_address();
    out.host = std::string(text.substr(1, close - 1));
    out.ipv6 = true;
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad_address();
    out.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  if (!is_numeric_host(out.host, out.ipv6 ? AF_INET6 : AF_INET)) return bad_address();
  auto number = parse_port(port);
  if (!number)
    return fail(Errc::invalid_input,
                fmt::format("bad port '{}' in listen address '{}': expected 0 to 65535", port, text));
  out.port = *number;
  return out;
}

}  // namespace xcg::config
