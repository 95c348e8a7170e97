#include "gateway/cluster/curl_multi.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "base/log.h"

namespace xcg {
namespace {

// A range of the whole key map is the largest answer we expect; far more is a broken peer.
constexpr size_t kMaxBody = 64 * 1024 * 1024;

void global_init() {
  static const CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (code != CURLE_OK)
    throw std::runtime_error(std::string("curl_global_init: ") + curl_easy_strerror(code));
}

template <class T>
void set(CURL* easy, CURLoption option, T value) {
  if (CURLcode code = curl_easy_setopt(easy, option, value); code != CURLE_OK)
    throw std::runtime_error(std::string("curl_easy_setopt: ") + curl_easy_strerror(code));
}

Errc errc_of(CURLcode code) { return code == CURLE_OPERATION_TIMEDOUT ? Errc::timeout : Errc::unavailable; }

uint32_t epoll_events(int what) {
  uint32_t events = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= EPOLLIN;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= EPOLLOUT;
  return events;
}

int curl_events(uint32_t events) {
  int mask = 0;
  if (events & EPOLLIN) mask |= CURL_CSELECT_IN;
  if (events & EPOLLOUT) mask |= CURL_CSELECT_OUT;
  if (events & (EPOLLERR | EPOLLHUP)) mask |= CURL_CSELECT_ERR;
  return mask;
}

}  // namespace

HttpCall::HttpCall(CurlMulti& multi, OnDone on_done, OnData on_data)
    : multi_(multi), easy_(curl_easy_init()), on_done_(std::move(on_done)), on_data_(std::move(on_data)) {
  if (!easy_) throw std::runtime_error("curl_easy_init failed");
}

HttpCall::~HttpCall() {
  if (attached_) curl_multi_remove_handle(multi_.multi_.get(), easy_.get());
  multi_.forget(this);
}

size_t HttpCall::on_write(char* data, size_t size, size_t count, void* self) noexcept {
  auto* call = static_cast<HttpCall*>(self);
  size_t n = size * count;
  std::string& into = call->on_data_ ? call->unread_ : call->response_.body;
  if (into.size() + n > kMaxBody) {
    call->overflow_ = true;
    return 0;  // aborts the transfer
  }
  if (call->on_data_ && call->unread_.empty()) call->multi_.fed_.push_back(call);
  into.append(data, n);
  return n;
}

Result<HttpResponse> HttpCall::outcome(CURLcode code) {
  if (overflow_)
    return fail(Errc::invalid_input, "answer larger than " + std::to_string(kMaxBody) + " bytes");
  if (code != CURLE_OK) {
    std::string why = error_[0] ? error_ : curl_easy_strerror(code);
    return fail(errc_of(code), why);
  }
  curl_easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &response_.status);
  return std::move(response_);
}

CurlMulti::CurlMulti(EventLoop& loop) : loop_(loop) {
  global_init();
  multi_.reset(curl_multi_init());
  if (!multi_) throw std::runtime_error("curl_multi_init failed");
  curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETFUNCTION, &CurlMulti::on_socket);
  curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_.get(), CURLMOPT_TIMERFUNCTION, &CurlMulti::on_timer);
  curl_multi_setopt(multi_.get(), CURLMOPT_TIMERDATA, this);
}

// curl may still report sockets and timers while it cleans up: not to members already gone.
CurlMulti::~CurlMulti() {
  curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETFUNCTION, nullptr);
  curl_multi_setopt(multi_.get(), CURLMOPT_TIMERFUNCTION, nullptr);
  multi_.reset();
}

void CurlMulti::configure(HttpCall& call, const HttpRequest& request) {
  CURL* easy = call.easy_.get();
  call.headers_.reset(curl_slist_append(nullptr, "Content-Type: application/json"));
  if (!call.headers_) throw std::runtime_error("curl_slist_append failed");
  set(easy, CURLOPT_URL, request.url.c_str());
  set(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  set(easy, CURLOPT_NOSIGNAL, 1L);
  set(easy, CURLOPT_HTTPHEADER, call.headers_.get());
  set(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
  set(easy, CURLOPT_COPYPOSTFIELDS, request.body.c_str());
  set(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  set(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connect_timeout.count()));
  set(easy, CURLOPT_TCP_KEEPALIVE, 1L);  // a watch's stream is quiet for long
  set(easy, CURLOPT_TCP_KEEPIDLE, 10L);
  set(easy, CURLOPT_TCP_KEEPINTVL, 5L);
  set(easy, CURLOPT_WRITEFUNCTION, &HttpCall::on_write);
  set(easy, CURLOPT_WRITEDATA, &call);
  set(easy, CURLOPT_PRIVATE, &call);
  set(easy, CURLOPT_ERRORBUFFER, call.error_);
  if (!request.tls.ca_file.empty()) set(easy, CURLOPT_CAINFO, request.tls.ca_file.c_str());
  if (!request.tls.cert_file.empty()) set(easy, CURLOPT_SSLCERT, request.tls.cert_file.c_str());
  if (!request.tls.key_file.empty()) set(easy, CURLOPT_SSLKEY, request.tls.key_file.c_str());
}

std::unique_ptr<HttpCall> CurlMulti::start(const HttpRequest& request, HttpCall::OnDone on_done,
                                           HttpCall::OnData on_data) {
  std::unique_ptr<HttpCall> call(new HttpCall(*this, std::move(on_done), std::move(on_data)));
  configure(*call, request);
  if (CURLMcode code = curl_multi_add_handle(multi_.get(), call->easy_.get()); code != CURLM_OK)
    throw std::runtime_error(std::string("curl_multi_add_handle: ") + curl_multi_strerror(code));
  call->attached_ = true;
  return call;
}

int CurlMulti::on_socket(CURL*, curl_socket_t fd, int what, void* self, void*) noexcept {
  try {
    static_cast<CurlMulti*>(self)->watch_socket(fd, what);
    return 0;
  } catch (const std::exception& e) {
    log::error("etcd client: cannot watch a socket: {}", e.what());
    return -1;  // curl fails the transfers on it
  }
}

void CurlMulti::watch_socket(curl_socket_t fd, int what) {
  if (what == CURL_POLL_REMOVE) {
    sockets_.erase(fd);
    return;
  }
  if (sockets_.contains(fd)) {
    loop_.modify(fd, epoll_events(what));
    return;
  }
  sockets_.emplace(fd, loop_.watch(fd, epoll_events(what), "etcd client socket",
                                   [this, fd](uint32_t events) { act(fd, curl_events(events)); }));
}

int CurlMulti::on_timer(CURLM*, long timeout_ms, void* self) noexcept {
  auto* multi = static_cast<CurlMulti*>(self);
  try {
    if (timeout_ms < 0) {
      multi->timer_.reset();
      return 0;
    }
    multi->timer_ = multi->loop_.timer(std::chrono::milliseconds(timeout_ms), "etcd client timer",
                                       [multi] { multi->act(CURL_SOCKET_TIMEOUT, 0); });
    return 0;
  } catch (const std::exception& e) {
    log::error("etcd client: cannot set a timer: {}", e.what());
    return -1;
  }
}

void CurlMulti::act(curl_socket_t fd, int events) {
  int running = 0;
  if (CURLMcode code = curl_multi_socket_action(multi_.get(), fd, events, &running); code != CURLM_OK)
    log::error("etcd client: curl_multi_socket_action: {}", curl_multi_strerror(code));
  deliver_data();
  deliver_done();
}

// One at a time: a callback may destroy any call, which takes it off fed_.
void CurlMulti::deliver_data() {
  while (!fed_.empty()) {
    HttpCall* call = fed_.front();
    fed_.erase(fed_.begin());
    std::string bytes = std::exchange(call->unread_, {});
    auto on_data = call->on_data_;  // outlives the call, which the callback may destroy
    on_data(bytes);
  }
}

void CurlMulti::deliver_done() {
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    HttpCall* call = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &call);
    CURLcode code = msg->data.result;
    curl_multi_remove_handle(multi_.get(), call->easy_.get());
    call->attached_ = false;
    auto on_done = std::move(call->on_done_);
    on_done(call->outcome(code));  // may destroy the call
  }
}

void CurlMulti::forget(HttpCall* call) noexcept {
  fed_.erase(std::remove(fed_.begin(), fed_.end(), call), fed_.end());
}

}  // namespace xcg
