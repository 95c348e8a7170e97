#include "bench/loadgen/websocket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

namespace xcg::bench {
namespace {

using Clock = std::chrono::steady_clock;

int ms_left(WebSocket::Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

UniqueFd connect_tcp(const WebLink& link) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(link.port));
  if (!fd || ::inet_pton(AF_INET, link.host.c_str(), &a.sin_addr) != 1 ||
      ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    throw std::runtime_error(fmt::format("connect {}: {}", link.authority(), std::strerror(errno)));
  int one = 1;  // keystrokes are single bytes: no Nagle delay, as libssh does for SSH
  if (::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
    throw std::runtime_error(fmt::format("TCP_NODELAY: {}", std::strerror(errno)));
  return fd;
}

// The frame header a client sends: FIN, the opcode, the mask bit and the length.
std::string frame_head(int opcode, size_t n) {
  std::string h(1, static_cast<char>(0x80 | opcode));
  if (n < 126) {
    h += static_cast<char>(0x80 | n);
  } else if (n < 65536) {
    h += static_cast<char>(0x80 | 126);
    for (int shift : {8, 0}) h += static_cast<char>((n >> shift) & 0xFF);
  } else {
    h += static_cast<char>(0x80 | 127);
    for (int shift = 56; shift >= 0; shift -= 8) h += static_cast<char>((n >> shift) & 0xFF);
  }
  return h;
}

uint32_t mask_key() {
  static std::mt19937 gen{std::random_device{}()};
  return gen();
}

}  // namespace

std::optional<WebLink> parse_web_link(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  size_t slash = url.find("/#"), colon = url.rfind(':', slash);
  if (!url.starts_with(kScheme) || slash == std::string_view::npos || colon == std::string_view::npos ||
      colon < kScheme.size())
    return std::nullopt;
  WebLink l;
  l.host = std::string(url.substr(kScheme.size(), colon - kScheme.size()));
  l.port = std::atoi(std::string(url.substr(colon + 1, slash - colon - 1)).c_str());
  l.token = std::string(url.substr(slash + 2));
  while (!l.token.empty() && (l.token.back() == '\n' || l.token.back() == '\r')) l.token.pop_back();
  if (l.port <= 0 || l.token.empty()) return std::nullopt;
  return l;
}

WebSocket::WebSocket(const WebLink& link, std::chrono::seconds timeout)
    : fd_(connect_tcp(link)), ctx_(SSL_CTX_new(TLS_client_method())) {
  if (!ctx_ || SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_2_VERSION) != 1)
    throw std::runtime_error("SSL_CTX_new failed");
  ssl_.reset(SSL_new(ctx_.get()));
  if (!ssl_ || SSL_set_fd(ssl_.get(), fd_.get()) != 1) throw std::runtime_error("SSL_new failed");
  timeval tv{static_cast<time_t>(timeout.count()), 0};  // a stalled server cannot hang a read forever
  if (::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      ::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
    throw std::runtime_error(fmt::format("socket timeouts: {}", std::strerror(errno)));
  if (SSL_connect(ssl_.get()) != 1) throw std::runtime_error("TLS handshake failed with " + link.authority());
  upgrade(link, Clock::now() + timeout);
}

void WebSocket::upgrade(const WebLink& link, Deadline deadline) {
  // Any 16 bytes do as the key; the server's Accept is not checked (xcg-web is the one tested).
  std::string request = fmt::format(
      "GET /ws HTTP/1.1\r\nHost: {0}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: eGNnLWJlbmNoLWtleS0wMQ==\r\nSec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Protocol: xcg.v1\r\nOrigin: https://{0}\r\n\r\n",
      link.authority());
  if (!write_all(request)) throw std::runtime_error("upgrade: " + error_);
  size_t end;
  while ((end = in_.find("\r\n\r\n")) == std::string::npos)
    if (!fill(deadline)) throw std::runtime_error("upgrade: " + error_);
  if (!in_.starts_with("HTTP/1.1 101"))
    throw std::runtime_error("upgrade refused: " + in_.substr(0, in_.find("\r\n")));
  in_.erase(0, end + 4);
}

bool WebSocket::write_all(std::string_view bytes) {
  while (!bytes.empty()) {
    int n = SSL_write(ssl_.get(), bytes.data(), static_cast<int>(bytes.size()));
    if (n <= 0) {
      error_ = "write failed";
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool WebSocket::send(int opcode, std::string_view payload) {
  uint32_t key = mask_key();
  unsigned char k[4];
  std::memcpy(k, &key, 4);
  std::string out = frame_head(opcode, payload.size()) + std::string(reinterpret_cast<char*>(k), 4);
  for (size_t i = 0; i < payload.size(); ++i) out += static_cast<char>(payload[i] ^ k[i % 4]);
  return write_all(out);
}

bool WebSocket::fill(Deadline deadline) {
  if (SSL_pending(ssl_.get()) == 0) {
    pollfd p{fd_.get(), POLLIN, 0};
    int r = ::poll(&p, 1, ms_left(deadline));
    if (r <= 0) {
      error_ = r == 0 ? "timeout" : std::strerror(errno);
      return false;
    }
  }
  char buf[16384];
  int n = SSL_read(ssl_.get(), buf, sizeof buf);
  if (n <= 0) {
    error_ = "connection closed";
    return false;
  }
  in_.append(buf, static_cast<size_t>(n));
  return true;
}

bool WebSocket::take(size_t n, Deadline deadline, std::string& out) {
  while (in_.size() < n)
    if (!fill(deadline)) return false;
  out = in_.substr(0, n);
  in_.erase(0, n);
  return true;
}

std::optional<Frame> WebSocket::read(Deadline deadline) {
  for (;;) {
    std::string head, ext, payload;
    if (!take(2, deadline, head)) return std::nullopt;
    uint64_t n = static_cast<unsigned char>(head[1]) & 0x7F;
    size_t ext_len = n == 126 ? 2 : n == 127 ? 8 : 0;
    if (ext_len) {
      if (!take(ext_len, deadline, ext)) return std::nullopt;
      n = 0;
      for (unsigned char c : ext) n = n << 8 | c;
    }
    if (!take(static_cast<size_t>(n), deadline, payload)) return std::nullopt;  // servers do not mask
    int opcode = head[0] & 0x0F;
    if (opcode == 0x9) {
      if (!send(0xA, payload)) return std::nullopt;
      continue;
    }
    if (opcode == 0xA) continue;
    return Frame{opcode, std::move(payload)};
  }
}

}  // namespace xcg::bench
