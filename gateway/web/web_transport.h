// TLS, HTTP/1.1 and the WebSocket of one browser connection (docs/web.md), on fd 0. All of
// Boost.Beast and Asio is in web_transport.cc and nowhere else: each translation unit that
// includes Beast costs half a minute and a gigabyte of compiler memory.
#pragma once

#include <memory>
#include <string_view>

#include "gateway/session/broker_client.h"
#include "gateway/web/http_rules.h"
#include "gateway/web/web_session.h"

namespace xcg::gateway::web {

struct TransportSettings {
  std::string_view tls_chain_pem;  // both empty: plain HTTP behind a proxy
  std::string_view tls_key_pem;
  PublicUrl url;
  bool trust_forwarded_for = false;  // the peer is a trusted proxy: X-Forwarded-For names the client
  unsigned login_grace_s = 120;
  // Serve the metrics endpoint (docs/metrics.md) instead of the browser console.
  bool metrics = false;
};

// The process's exit codes, as xcg-session's.
enum ExitCode { kOk = 0, kSetupFailed = 1, kHandshakeFailed = 2, kLoginTimeout = 3, kRefused = 4 };

class WebTransport {
 public:
  // Before the sandbox: the event loop, the TLS context with the pair (the caller wipes its
  // copy afterwards), fd 0 as the socket in non-blocking mode. Throws on failure.
  WebTransport(const TransportSettings& settings, BrokerClient& broker, WebSession& session);
  ~WebTransport();
  WebTransport(const WebTransport&) = delete;
  WebTransport& operator=(const WebTransport&) = delete;

  // Inside the sandbox: serves the connection until it ends; gives the exit code.
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace xcg::gateway::web
