// The only translation unit with Boost.Beast and Asio (web_transport.h says why). One thread,
// one io_context: TLS handshake, HTTP/1.1 requests by http_rules.h, the upgrade to the
// WebSocket, then WebSession's events. The broker and console sockets wake the loop through
// SessionWatch's epoll descriptor.
#include "gateway/web/web_transport.h"

#include <sys/socket.h>

#include <array>
#include <chrono>
#include <optional>
#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "base/log.h"
#include "gateway/session/sandbox.h"
#include "gateway/web/session_watch.h"

namespace xcg::gateway::web {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr int kTcpFd = 0;
constexpr unsigned kMaxRequests = 32;
constexpr size_t kMaxHeaderBytes = 8 * 1024;
constexpr size_t kMaxMetricsHeaderBytes = 2 * 1024;  // a scraper's GET is a few lines
constexpr size_t kMaxMessageBytes = 64 * 1024;
constexpr auto kTick = std::chrono::seconds(1);  // the core's idle timeout is checked at steps
constexpr auto kLinger = std::chrono::seconds(1);

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// TLS 1.2 and 1.3 only, no renegotiation, no session tickets or cache (every process is fresh:
// nothing could be resumed), the pair from the hello.
std::unique_ptr<ssl::context> make_tls(std::string_view chain_pem, std::string_view key_pem) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | SSL_OP_NO_TICKET |
                   SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX* raw = ctx->native_handle();
  if (SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION) != 1 || SSL_CTX_set_num_tickets(raw, 0) != 1)
    throw std::runtime_error("cannot configure TLS");
  SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_OFF);
  ctx->use_certificate_chain(asio::buffer(chain_pem.data(), chain_pem.size()));
  ctx->use_private_key(asio::buffer(key_pem.data(), key_pem.size()), ssl::context::pem);
  return ctx;
}

// fd 0 as the socket, its family as the kernel says (a unix socket from a proxy works as a
// stream too). Non-blocking now: Asio would otherwise set it with ioctl, which the sandbox refuses.
tcp::socket adopt_socket(asio::io_context& ioc) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  bool v6 =
      ::getsockname(kTcpFd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 && addr.ss_family == AF_INET6;
  tcp::socket socket(ioc);
  socket.assign(v6 ? tcp::v6() : tcp::v4(), kTcpFd);
  socket.non_blocking(true);
  return socket;
}

unsigned status_for(const beast::error_code& ec) {
  if (ec == http::error::header_limit) return 431;
  if (ec == http::error::body_limit) return 413;
  return 400;
}

std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

bool quiet_end(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == ssl::error::stream_truncated ||
         ec == asio::error::operation_aborted || ec == asio::error::connection_reset;
}

// What the connection shares whatever carries it: the loop, the timers, the session's sockets.
struct Loop {
  Loop(const TransportSettings& s, BrokerClient& b, WebSession& ws)
      : settings(s),
        broker(b),
        session(ws),
        watch(b.fd()),
        watch_sd(ioc, watch.fd()),
        login_timer(ioc),
        tick(ioc) {
    watch_sd.non_blocking(true);  // before the sandbox: see adopt_socket
  }
  ~Loop() { (void)watch_sd.release(); }  // SessionWatch owns it

  asio::io_context ioc{1};
  TransportSettings settings;
  BrokerClient& broker;
  WebSession& session;
  SessionWatch watch;
  asio::posix::stream_descriptor watch_sd;
  asio::steady_timer login_timer;
  asio::steady_timer tick;
  int exit_code = kOk;
  bool opened_websocket = false;

  void finish(int code) {
    exit_code = code;
    ioc.stop();
  }
};

template <class Stream>
class Connection {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  Connection(Loop& loop, Stream stream) : loop_(loop), stream_(std::move(stream)) {}

  void start() {
    loop_.login_timer.expires_after(std::chrono::seconds(loop_.settings.login_grace_s));
    loop_.login_timer.async_wait([this](beast::error_code ec) { on_login_grace(ec); });
    wait_session_sockets();
    arm_tick();
    if constexpr (kTls)
      stream_->async_handshake(ssl::stream_base::server, [this](beast::error_code ec) {
        if (ec) return loop_.finish(kHandshakeFailed);
        read_request();
      });
    else read_request();
  }

 private:
  // --- HTTP ----------------------------------------------------------------------------------

  void read_request() {
    parser_.emplace();
    parser_->header_limit(loop_.settings.metrics ? kMaxMetricsHeaderBytes : kMaxHeaderBytes);
    parser_->body_limit(0);
    http::async_read(*stream_, buffer_, *parser_, [this](beast::error_code ec, size_t) { on_request(ec); });
  }

  void on_request(beast::error_code ec) {
    if (ec && quiet_end(ec)) return loop_.finish(loop_.exit_code);
    if (ec) return respond(status_for(ec), false);
    ++requests_;
    Request& req = parser_->get();
    if (loop_.settings.metrics) return serve_metrics(req);
    bool again = req.keep_alive() && requests_ < kMaxRequests;
    if (!host_ok(sv(req[http::field::host]), loop_.settings.url)) return respond(421, again);
    Route r = route(sv(req.method_string()), sv(req.target()));
    if (r.kind == Route::Kind::refused) return respond(r.status, again);
    if (r.kind == Route::Kind::file) return serve(req, *r.file, again);
    if (!websocket::is_upgrade(req) || !offers_subprotocol(sv(req[http::field::sec_websocket_protocol])))
      return respond(400, false);
    if (!origin_ok(sv(req[http::field::origin]), loop_.settings.url)) return respond(403, false);
    upgrade(parser_->release());
  }

  Response response(unsigned status, bool cacheable) {
    Response res{static_cast<http::status>(status), 11};
    for (const auto& [name, value] : security_headers(loop_.settings.url, kTls, cacheable))
      res.set(name, value);
    return res;
  }

  void respond(unsigned status, bool again) {
    Response res = response(status, false);
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = std::string(http::obsolete_reason(static_cast<http::status>(status))) + "\n";
    send(std::move(res), again);
  }

  void serve(const Request& req, const StaticFile& file, bool again) {
    Response res = response(200, file.immutable);
    res.set(http::field::content_type, std::string(file.content_type));
    bool gzip = !file.gzip.empty() && accepts_gzip(sv(req[http::field::accept_encoding]));
    if (gzip) res.set(http::field::content_encoding, "gzip");
    if (!file.gzip.empty()) res.set(http::field::vary, "Accept-Encoding");
    res.body() = std::string(gzip ? file.gzip : file.body);
    send(std::move(res), again);
  }

  // One request per connection: GET /metrics, answered with the broker's text.
  void serve_metrics(const Request& req) {
    unsigned status = metrics_status(sv(req.method_string()), sv(req.target()));
    if (status != 200) return respond(status, false);
    auto metrics = loop_.broker.metrics();
    if (!metrics) {
      log::warn("no metrics from the broker: {}", metrics.error().message);
      return respond(503, false);
    }
    Response res = response(200, false);
    res.set(http::field::content_type, std::string(kMetricsContentType));
    res.body() = std::move(metrics->text);
    send(std::move(res), false);
  }

  void send(Response res, bool again) {
    res.keep_alive(again);
    res.prepare_payload();
    response_.emplace(std::move(res));
    http::async_write(*stream_, *response_, [this, again](beast::error_code ec, size_t) {
      response_.reset();
      if (ec) return loop_.finish(loop_.exit_code);
      if (!again) return linger();
      read_request();
    });
  }

  // A refusal often comes while the client is still sending (a huge request line). Closing
  // with its bytes unread would reset the connection, and the reset can destroy the answer
  // before the client reads it; so the sending side is shut, and what still arrives is read
  // and dropped until the client closes, or for a second at most.
  void linger() {
    auto& tcp = beast::get_lowest_layer(*stream_);
    beast::error_code not_connected;  // the client has gone already: nothing to linger for
    tcp.socket().shutdown(tcp::socket::shutdown_send, not_connected);
    tcp.expires_after(kLinger);
    drain();
  }

  void drain() {
    beast::get_lowest_layer(*stream_).async_read_some(asio::buffer(dropped_),
                                                      [this](beast::error_code ec, size_t) {
                                                        if (ec) return loop_.finish(loop_.exit_code);
                                                        drain();
                                                      });
  }

  // --- WebSocket -----------------------------------------------------------------------------

  void upgrade(Request req) {
    loop_.opened_websocket = true;
    upgrade_request_ = std::move(req);
    user_agent_ = std::string(upgrade_request_[http::field::user_agent]);
    if (loop_.settings.trust_forwarded_for)
      forwarded_for_ = forwarded_client(sv(upgrade_request_["X-Forwarded-For"]));
    ws_.emplace(std::move(*stream_));
    stream_.reset();
    beast::get_lowest_layer(*ws_).expires_never();  // the WebSocket's own timeouts from here on
    ws_->set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_->read_message_max(kMaxMessageBytes);
    Headers headers = security_headers(loop_.settings.url, kTls, false);
    ws_->set_option(websocket::stream_base::decorator([headers](websocket::response_type& res) {
      res.set(http::field::sec_websocket_protocol, std::string(kSubprotocol));
      for (const auto& [name, value] : headers) res.set(name, value);
    }));
    ws_->async_accept(upgrade_request_, [this](beast::error_code ec) {
      if (ec) return loop_.finish(kHandshakeFailed);
      read_message();
    });
  }

  void read_message() {
    ws_->async_read(in_, [this](beast::error_code ec, size_t) { on_message(ec); });
  }

  void on_message(beast::error_code ec) {
    if (ec) return browser_gone();
    std::string data = beast::buffers_to_string(in_.data());
    in_.consume(in_.size());
    if (!loop_.session.authorized()) {
      bool ok = loop_.session.authorize(data, ws_->got_text(), forwarded_for_, user_agent_);
      loop_.exit_code = ok ? kOk : kRefused;
      if (ok) loop_.login_timer.cancel();
    } else if (ws_->got_text()) {
      loop_.session.text(data);
    } else {
      loop_.session.binary(data, Clock::now());
    }
    after_event();
    read_message();  // also while closing: Beast completes the close handshake through it
  }

  void browser_gone() {
    loop_.session.hung_up();
    loop_.session.step(Clock::now());
    loop_.finish(loop_.exit_code);
  }

  // One write in flight: the next frame, or after the last one the close.
  void pump() {
    if (!ws_ || writing_ || closing_) return;
    if (auto frame = loop_.session.terminal().take_frame()) {
      writing_ = true;
      out_ = std::move(*frame);
      ws_->binary(out_.binary);
      ws_->async_write(asio::buffer(out_.bytes), [this](beast::error_code ec, size_t) {
        writing_ = false;
        if (ec) return browser_gone();
        after_event();
      });
      return;
    }
    const auto& close = loop_.session.terminal().close();
    if (!close) return;
    closing_ = true;
    ws_->async_close(websocket::close_reason(static_cast<websocket::close_code>(close->code), close->reason),
                     [this](beast::error_code) { loop_.finish(loop_.exit_code); });
  }

  // --- the session's sockets and time --------------------------------------------------------

  void after_event() {
    loop_.session.step(Clock::now());
    loop_.watch.watch_console(loop_.session.console_to_watch());
    if (!ws_ && loop_.session.terminal().close()) return loop_.finish(loop_.exit_code);  // revoked before
    pump();
  }

  void wait_session_sockets() {
    loop_.watch_sd.async_wait(asio::posix::descriptor_base::wait_read, [this](beast::error_code ec) {
      if (ec) return;
      auto ready = loop_.watch.ready();
      if (ready.broker) loop_.broker.take_unsolicited();
      if (loop_.broker.revoked()) loop_.watch.forget_broker();  // gone or revoked: nothing more to hear
      if (ready.console) loop_.session.console_readable();
      after_event();
      wait_session_sockets();
    });
  }

  void arm_tick() {
    loop_.tick.expires_after(kTick);
    loop_.tick.async_wait([this](beast::error_code ec) {
      if (ec) return;
      after_event();
      arm_tick();
    });
  }

  void on_login_grace(beast::error_code ec) {
    if (ec || loop_.session.authorized()) return;
    if (loop_.opened_websocket) log::info("login grace time over");
    loop_.finish(loop_.opened_websocket ? kLoginTimeout : kOk);
  }

  Loop& loop_;
  std::optional<Stream> stream_;
  beast::flat_buffer buffer_;
  std::array<char, 16 * 1024> dropped_{};
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<Response> response_;
  unsigned requests_ = 0;

  Request upgrade_request_;
  std::string user_agent_;
  std::string forwarded_for_;
  std::optional<websocket::stream<Stream>> ws_;
  beast::flat_buffer in_;
  Frame out_;
  bool writing_ = false;
  bool closing_ = false;
};

using PlainConnection = Connection<beast::tcp_stream>;
using TlsConnection = Connection<beast::ssl_stream<beast::tcp_stream>>;

}  // namespace

struct WebTransport::Impl {
  Impl(const TransportSettings& s, BrokerClient& b, WebSession& ws) : loop(s, b, ws) {
    bool tls = !s.tls_chain_pem.empty() || !s.tls_key_pem.empty();
    if (tls) {
      tls_context = make_tls(s.tls_chain_pem, s.tls_key_pem);
      loop.settings.tls_key_pem = {};  // OpenSSL has its copy; the caller wipes the hello's
      tls_connection.emplace(loop, beast::ssl_stream<beast::tcp_stream>(
                                       beast::tcp_stream(adopt_socket(loop.ioc)), *tls_context));
    } else {
      plain_connection.emplace(loop, beast::tcp_stream(adopt_socket(loop.ioc)));
    }
  }

  Loop loop;
  std::unique_ptr<ssl::context> tls_context;
  std::optional<TlsConnection> tls_connection;
  std::optional<PlainConnection> plain_connection;
};

WebTransport::WebTransport(const TransportSettings& settings, BrokerClient& broker, WebSession& session)
    : impl_(std::make_unique<Impl>(settings, broker, session)) {}

WebTransport::~WebTransport() = default;

int WebTransport::run() {
  if (impl_->tls_connection) impl_->tls_connection->start();
  if (impl_->plain_connection) impl_->plain_connection->start();
  impl_->loop.ioc.run();
  return impl_->loop.exit_code;
}

}  // namespace xcg::gateway::web
