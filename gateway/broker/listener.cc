#include "gateway/broker/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

namespace xcg::gateway {
namespace {

std::string format_sockaddr(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    ::inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);
    return fmt::format("{}:{}", host, ntohs(a.sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    ::inet_ntop(AF_INET6, &a.sin6_addr, host, sizeof host);
    return fmt::format("[{}]:{}", host, ntohs(a.sin6_port));
  }
  if (ss.ss_family == AF_UNIX)
    return fmt::format("unix:{}", reinterpret_cast<const sockaddr_un&>(ss).sun_path);
  return "unknown";
}

// Clears every bit of `bytes` past the first `prefix`.
void mask_to_prefix(unsigned char* bytes, size_t size, unsigned prefix) {
  for (size_t i = 0; i < size; ++i) {
    unsigned kept = prefix > 8 * i ? std::min(8u, prefix - unsigned(8 * i)) : 0;
    bytes[i] &= static_cast<unsigned char>(0xff00u >> kept);
  }
}

std::string ipv4_bucket(in_addr a, unsigned prefix) {
  mask_to_prefix(reinterpret_cast<unsigned char*>(&a.s_addr), 4, prefix);
  char text[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &a, text, sizeof text);
  return fmt::format("{}/{}", text, prefix);
}

std::system_error bind_error(const config::ListenAddress& a, const char* what) {
  return std::system_error(errno, std::generic_category(), fmt::format("{} {}", what, a.text));
}

// A socket file left by a broker that is gone is replaced; one that still answers is in use.
void clear_stale_socket(const config::ListenAddress& a, const sockaddr_un& sun) {
  struct stat st {};
  if (::lstat(a.unix_path.c_str(), &st) != 0) return;
  if (!S_ISSOCK(st.st_mode))
    throw std::system_error(EEXIST, std::generic_category(), "not a socket: " + a.text);
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (probe && ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&sun), sizeof sun) == 0)
    throw std::system_error(EADDRINUSE, std::generic_category(), "bind " + a.text);
  if (::unlink(a.unix_path.c_str()) != 0) throw bind_error(a, "unlink stale");
}

// The socket takes its directory's group and mode 0660: the operator grants a proxy access
// by the directory (`install -d -g www-data -m 0750 /run/xcg-web`), as with any local service.
void share_with_directory_group(const config::ListenAddress& a) {
  auto dir = a.unix_path.substr(0, a.unix_path.rfind('/'));
  struct stat st {};
  if (::stat(dir.empty() ? "/" : dir.c_str(), &st) != 0) throw bind_error(a, "stat directory of");
  if (::chown(a.unix_path.c_str(), static_cast<uid_t>(-1), st.st_gid) != 0) throw bind_error(a, "chown");
  if (::chmod(a.unix_path.c_str(), 0660) != 0) throw bind_error(a, "chmod");
}

Listener open_unix(const config::ListenAddress& a) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  a.unix_path.copy(sun.sun_path, sizeof sun.sun_path - 1);  // the config checked the length
  clear_stale_socket(a, sun);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throw bind_error(a, "socket");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) throw bind_error(a, "bind");
  share_with_directory_group(a);
  if (::listen(fd.get(), 128) != 0) throw bind_error(a, "listen");
  return Listener{std::move(fd), a.text};
}

Listener open_one(const config::ListenAddress& a) {
  if (!a.unix_path.empty()) return open_unix(a);
  sockaddr_storage ss{};
  socklen_t len;
  if (a.ipv6) {
    auto& s6 = reinterpret_cast<sockaddr_in6&>(ss);
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(a.port);
    if (::inet_pton(AF_INET6, a.host.c_str(), &s6.sin6_addr) != 1) throw bind_error(a, "bad address");
    len = sizeof s6;
  } else {
    auto& s4 = reinterpret_cast<sockaddr_in&>(ss);
    s4.sin_family = AF_INET;
    s4.sin_port = htons(a.port);
    if (::inet_pton(AF_INET, a.host.c_str(), &s4.sin_addr) != 1) throw bind_error(a, "bad address");
    len = sizeof s4;
  }
  UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throw bind_error(a, "socket");
  int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
    throw bind_error(a, "setsockopt");
  // "[::]:22" and "0.0.0.0:22" are separate entries, so v6 sockets never take v4 traffic.
  if (a.ipv6 && ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
    throw bind_error(a, "setsockopt");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) throw bind_error(a, "bind");
  if (::listen(fd.get(), 128) != 0) throw bind_error(a, "listen");
  std::string bound = local_address(fd.get());
  return Listener{std::move(fd), bound};
}

}  // namespace

std::vector<Listener> open_listeners(const std::vector<config::ListenAddress>& addresses, ListenerKind kind) {
  std::vector<Listener> out;
  out.reserve(addresses.size());
  for (const auto& a : addresses) {
    out.push_back(open_one(a));
    out.back().kind = kind;
  }
  return out;
}

std::string peer_address(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "unknown";
  // A proxy's end of a unix socket has no name: the listener's path says where it came from.
  if (ss.ss_family == AF_UNIX) return local_address(fd);
  return format_sockaddr(ss);
}

std::string host_of(std::string_view address) {
  if (is_unix(address)) return std::string(address);
  if (!address.empty() && address[0] == '[') return std::string(address.substr(1, address.find(']') - 1));
  return std::string(address.substr(0, address.rfind(':')));
}

std::string source_bucket(std::string_view host, unsigned prefix_v4, unsigned prefix_v6) {
  std::string text(host);
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) return ipv4_bucket(v4, std::min(prefix_v4, 32u));
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) != 1) return text;
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    std::memcpy(&v4.s_addr, &v6.s6_addr[12], 4);
    return ipv4_bucket(v4, std::min(prefix_v4, 32u));
  }
  prefix_v6 = std::min(prefix_v6, 128u);
  mask_to_prefix(v6.s6_addr, sizeof v6.s6_addr, prefix_v6);
  char out[INET6_ADDRSTRLEN];
  ::inet_ntop(AF_INET6, &v6, out, sizeof out);
  return fmt::format("{}/{}", out, prefix_v6);
}

// Both cut to the network's prefix compare equal exactly when the host is inside it; the
// family shows in the text, so an IPv4 network never matches an IPv6 host.
bool in_networks(std::string_view host, const std::vector<std::string>& networks) {
  for (const auto& net : networks) {
    auto slash = net.find('/');
    std::string base = net.substr(0, slash);
    unsigned prefix = 128;
    if (slash != std::string::npos) {
      auto [end, ec] = std::from_chars(net.data() + slash + 1, net.data() + net.size(), prefix);
      if (ec != std::errc() || end != net.data() + net.size()) continue;
    }
    if (source_bucket(host, prefix, prefix) == source_bucket(base, prefix, prefix)) return true;
  }
  return false;
}

bool is_unix(std::string_view address) { return address.starts_with("unix:"); }

std::string local_address(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "unknown";
  return format_sockaddr(ss);
}

}  // namespace xcg::gateway
