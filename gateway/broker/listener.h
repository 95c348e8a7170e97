// Listening TCP sockets, owned by the broker (not libssh: we want a real backlog, IPv6
// and per-source accounting before any SSH code sees the connection).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/unique_fd.h"
#include "config/config.h"

namespace xcg::gateway {

// What an accepted connection is handed to: xcg-session, or xcg-web over TLS or, behind a proxy
// on the same host, plain HTTP, or xcg-web serving the metrics endpoint (plain HTTP, this host).
enum class ListenerKind : uint8_t { ssh, web_tls, web_plain, metrics };

struct Listener {
  UniqueFd fd;
  std::string address;  // the bound address, with the real port: "127.0.0.1:40123", or "unix:PATH"
  ListenerKind kind = ListenerKind::ssh;
};

// Binds and listens on every address; throws std::system_error naming the address.
std::vector<Listener> open_listeners(const std::vector<config::ListenAddress>& addresses,
                                     ListenerKind kind = ListenerKind::ssh);

// "203.0.113.7:51234" / "[2001:db8::1]:51234" for an accepted peer or a bound socket.
std::string peer_address(int fd);
std::string local_address(int fd);
// A unix socket's address: "unix:/run/xcg/web.sock" (for an accepted connection, the listener's).
bool is_unix(std::string_view address);
// The host part of an address peer_address() gave (a unix socket's whole address): "203.0.113.7",
// "2001:db8::1".
std::string host_of(std::string_view address);
// The per-source limits' bucket of a host (as host_of gives it): the network of the address cut
// to its family's prefix length, "203.0.113.0/24", "2001:db8:1:2::/64". A v4-mapped IPv6
// address ("::ffff:203.0.113.7") counts as the IPv4 address it is. Anything else is its own
// bucket, as given.
std::string source_bucket(std::string_view host, unsigned prefix_v4, unsigned prefix_v6);
// Whether `host` lies in one of `networks` ("127.0.0.0/8", "::1/128"; a bare address is its own
// network).
bool in_networks(std::string_view host, const std::vector<std::string>& networks);

}  // namespace xcg::gateway
