// The benchmark's browser-protocol client: a blocking client-side WebSocket (RFC 6455) over
// OpenSSL TLS, just enough for xcg-web's `xcg.v1` (docs/web.md): the upgrade, masked frames
// out, frames in. The certificate is not verified: the bench's gateway makes a self-signed one.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/openssl_handles.h"
#include "base/unique_fd.h"

namespace xcg::bench {

// A link as `xcg ctl weblink` prints it: https://HOST:PORT/#TOKEN.
struct WebLink {
  std::string host;  // numeric
  int port = 0;
  std::string token;
  std::string authority() const { return host + ":" + std::to_string(port); }
};
std::optional<WebLink> parse_web_link(std::string_view url);

struct Frame {
  int opcode = 0;  // 1 text, 2 binary, 8 close
  std::string payload;
};

class WebSocket {
 public:
  using Deadline = std::chrono::steady_clock::time_point;

  // Connects, completes TLS and the upgrade on /ws; throws std::runtime_error on failure.
  WebSocket(const WebLink& link, std::chrono::seconds timeout);
  WebSocket(const WebSocket&) = delete;
  WebSocket& operator=(const WebSocket&) = delete;

  bool send_text(std::string_view s) { return send(0x1, s); }
  bool send_binary(std::string_view s) { return send(0x2, s); }
  // The next data or close frame (pings are answered); nullopt on timeout or a dead stream.
  std::optional<Frame> read(Deadline deadline);
  const std::string& error() const { return error_; }

 private:
  bool send(int opcode, std::string_view payload);
  bool write_all(std::string_view bytes);
  bool fill(Deadline deadline);  // appends what arrives to in_
  bool take(size_t n, Deadline deadline, std::string& out);
  void upgrade(const WebLink& link, Deadline deadline);

  UniqueFd fd_;
  std::unique_ptr<SSL_CTX, OsslDeleter<SSL_CTX_free>> ctx_;
  std::unique_ptr<SSL, OsslDeleter<SSL_free>> ssl_;
  std::string in_;
  std::string error_;
};

}  // namespace xcg::bench
