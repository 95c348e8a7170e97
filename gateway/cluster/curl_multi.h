// HTTP POSTs over libcurl's multi interface, driven by an EventLoop: curl tells us which
// descriptors and which timeout to wait for, the loop tells curl when they are ready.
//
// No callback of ours runs inside libcurl: bytes received are handed on, and finished
// transfers reported, once curl has returned to the loop. So an owner may destroy any call,
// its own included, from those callbacks.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "base/event_loop.h"
#include "gateway/cluster/curl_handles.h"

namespace xcg {

// TLS files for https endpoints; empty ones are not set.
struct TlsFiles {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

struct HttpRequest {
  std::string url;
  std::string body;                      // POSTed as application/json
  std::chrono::milliseconds timeout{0};  // the whole transfer; 0 for a stream, which has none
  std::chrono::milliseconds connect_timeout{1000};
  TlsFiles tls;
};

struct HttpResponse {
  long status = 0;
  std::string body;  // empty for a stream, whose bytes went to its OnData
};

class CurlMulti;

// One transfer. Destroying it aborts the transfer and silences its callbacks.
class HttpCall {
 public:
  using OnData = std::function<void(std::string_view)>;
  // Errc::unavailable: no connection or it broke; Errc::timeout: it took too long.
  using OnDone = std::function<void(Result<HttpResponse>)>;

  HttpCall(const HttpCall&) = delete;
  HttpCall& operator=(const HttpCall&) = delete;
  ~HttpCall();

 private:
  friend class CurlMulti;
  HttpCall(CurlMulti& multi, OnDone on_done, OnData on_data);
  static size_t on_write(char* data, size_t size, size_t count, void* self) noexcept;
  Result<HttpResponse> outcome(CURLcode code);

  CurlMulti& multi_;
  CurlEasy easy_;
  CurlSlist headers_;
  OnDone on_done_;
  OnData on_data_;
  HttpResponse response_;
  std::string unread_;  // a stream's bytes not yet handed to on_data_
  bool attached_ = false;
  bool overflow_ = false;
  char error_[CURL_ERROR_SIZE] = {};
};

class CurlMulti {
 public:
  explicit CurlMulti(EventLoop& loop);  // throws std::runtime_error
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;
  ~CurlMulti();  // every HttpCall it started must be gone by then

  // With on_data the response body is streamed to it and not kept.
  [[nodiscard]] std::unique_ptr<HttpCall> start(const HttpRequest& request, HttpCall::OnDone on_done,
                                                HttpCall::OnData on_data = {});

 private:
  friend class HttpCall;
  static int on_socket(CURL* easy, curl_socket_t fd, int what, void* self, void* socketp) noexcept;
  static int on_timer(CURLM* multi, long timeout_ms, void* self) noexcept;
  void watch_socket(curl_socket_t fd, int what);
  void act(curl_socket_t fd, int events);
  void deliver_data();
  void deliver_done();
  void forget(HttpCall* call) noexcept;
  void configure(HttpCall& call, const HttpRequest& request);

  EventLoop& loop_;
  CurlMultiHandle multi_;
  std::unordered_map<curl_socket_t, EventLoop::Watch> sockets_;
  EventLoop::Timer timer_;
  std::vector<HttpCall*> fed_;  // calls with unread_ bytes
};

}  // namespace xcg
