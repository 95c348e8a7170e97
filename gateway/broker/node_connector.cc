#include "gateway/broker/node_connector.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace xcg::gateway {
namespace {

// A numeric address only: resolving a name (getaddrinfo) would block the loop.
Result<sockaddr_storage> numeric_address(const NodeRoute& route, socklen_t& length) {
  sockaddr_storage address{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
  if (::inet_pton(AF_INET, route.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(route.port);
    length = sizeof *v4;
    return address;
  }
  if (::inet_pton(AF_INET6, route.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(route.port);
    length = sizeof *v6;
    return address;
  }
  return fail(Errc::invalid_input, fmt::format("'{}' is not a numeric address", route.host));
}

// The socket, its connect begun (EINPROGRESS) or done.
Result<UniqueFd> begin_connect(const NodeRoute& route) {
  socklen_t length = 0;
  auto address = numeric_address(route, length);
  if (!address) return tl::unexpected(address.error());
  UniqueFd fd(::socket(address->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return fail_errno("socket");
  // Consoles are interactive: see Broker::accept_one.
  int one = 1;
  (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // only costs latency
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*address), length) != 0 && errno != EINPROGRESS)
    return fail_errno("connect");
  return fd;
}

Result<void> connect_result(int fd) {
  int error = 0;
  socklen_t length = sizeof error;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return fail_errno("getsockopt");
  if (error != 0) return tl::unexpected(Error::from_errno("connect", error));
  return {};
}

}  // namespace

void NodeConnector::connect(const NodeRoute& route, Done done) {
  uint64_t id = next_id_++;
  pending_[id].done = std::move(done);
  start(id, route);
}

void NodeConnector::start(uint64_t id, const NodeRoute& route) {
  Pending& p = pending_[id];
  auto fd = begin_connect(route);
  if (!fd) {
    // Answered from the loop all the same, so that no caller sees its callback run inside connect().
    p.timer = loop_.timer(std::chrono::milliseconds(0), "node connect " + route.node,
                          [this, id, e = fd.error()] { finish(id, tl::unexpected(e)); });
    return;
  }
  p.fd = std::move(*fd);
  auto fail_all = [this, id] { finish(id, fail(Errc::system, "node connect failed")); };
  p.watch = loop_.watch(
      p.fd.get(), EPOLLOUT, "node connect " + route.node, [this, id](uint32_t) { on_writable(id); },
      fail_all);
  p.timer = loop_.timer(timeout_, "node connect timeout " + route.node,
                        [this, id] { finish(id, fail(Errc::timeout, "connect timed out")); });
}

void NodeConnector::on_writable(uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  if (auto r = connect_result(it->second.fd.get()); !r) return finish(id, tl::unexpected(r.error()));
  finish(id, std::move(it->second.fd));
}

void NodeConnector::finish(uint64_t id, Result<UniqueFd> result) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Done done = std::move(it->second.done);
  pending_.erase(it);  // its watch and timer end here, before the descriptor could be reused
  done(std::move(result));
}

}  // namespace xcg::gateway
