#include "gateway/session/broker_client.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

namespace xcg::gateway {
namespace {

template <class T>
Result<T> as(Result<ipc::Received> r) {
  if (!r) return tl::unexpected(r.error());
  return std::get<T>(std::move(r->message));  // moved, not copied: the hello holds host keys
}

}  // namespace

Result<ipc::Received> BrokerClient::wait_for(ipc::Type answer, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    int n = ::poll(&p, 1, timeout_ms < 0 ? -1 : static_cast<int>(std::max<long>(0, left.count())));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("poll broker");
    if (n == 0) return fail(Errc::timeout, "the broker did not answer");
    auto r = ipc::receive(fd_);
    if (!r) return r;
    if (keep_unsolicited(r->message)) continue;  // acted on at the next step; our answer follows
    if (ipc::type_of(r->message) != answer)
      return fail(Errc::invalid_input, "unexpected message from the broker");
    return r;
  }
}

void BrokerClient::take_unsolicited() {
  pollfd p{fd_, POLLIN, 0};
  while (::poll(&p, 1, 0) == 1) {
    auto r = ipc::receive(fd_);
    if (!r) {
      // The broker is gone or talks nonsense: nothing more can be done for the customer.
      revoked_ = r.error().code == Errc::peer_closed ? "the gateway is shutting down" : "internal error";
      return;
    }
    if (!keep_unsolicited(r->message)) {
      revoked_ = "internal error";  // an answer nobody asked for
      return;
    }
  }
}

bool BrokerClient::keep_unsolicited(const ipc::Message& m) {
  if (auto* revoke = std::get_if<ipc::Revoke>(&m)) {
    revoked_ = revoke->text;  // the session ends at its next step
    handover_ = revoke->handover;
    return true;
  }
  auto* narrowed = std::get_if<ipc::Narrowed>(&m);
  if (narrowed == nullptr) return false;
  if (!narrowed_) narrowed_.emplace();
  narrowed_->readonly |= narrowed->readonly;
  narrowed_->console_withdrawn |= narrowed->console_withdrawn;
  narrowed_->text += (narrowed_->text.empty() ? "" : "; ") + narrowed->text;
  return true;
}

Result<ipc::Received> BrokerClient::call(const ipc::Message& request, ipc::Type answer) {
  if (auto sent = ipc::send(fd_, request); !sent) return tl::unexpected(sent.error());
  return wait_for(answer);
}

Result<ipc::FrontKey> BrokerClient::front_key() {
  auto keys = as<ipc::FrontKey>(wait_for(ipc::Type::front_key));
  ipc::wipe_receive_buffer();
  return keys;
}

Result<ipc::Hello> BrokerClient::hello(UniqueFd& connection) {
  auto received = wait_for(ipc::Type::hello, -1);
  if (received) connection = std::move(received->fd);
  auto hello = as<ipc::Hello>(std::move(received));
  ipc::wipe_receive_buffer();  // the frame held the host keys; the caller wipes its copy
  return hello;
}

Result<ipc::Hello> BrokerClient::hello() {
  UniqueFd connection;  // xcg-web always gets its connection with the exec
  return hello(connection);
}

Result<ipc::AuthorizeAns> BrokerClient::authorize(const ipc::AuthorizeReq& req) {
  return as<ipc::AuthorizeAns>(call(req, ipc::Type::authorize_ans));
}

Result<ipc::AuthorizeAns> BrokerClient::web_authorize(const ipc::WebAuthorizeReq& req) {
  return as<ipc::AuthorizeAns>(call(req, ipc::Type::authorize_ans));
}

Result<ipc::StatusAns> BrokerClient::status() {
  return as<ipc::StatusAns>(call(ipc::StatusReq{}, ipc::Type::status_ans));
}

Result<ipc::ActionAns> BrokerClient::action(config::Action a) {
  return as<ipc::ActionAns>(call(ipc::ActionReq{a}, ipc::Type::action_ans));
}

Result<ipc::AttachAns> BrokerClient::attach(UniqueFd& console) {
  auto r = call(ipc::AttachReq{}, ipc::Type::attach_ans);
  if (!r) return tl::unexpected(r.error());
  auto ans = std::get<ipc::AttachAns>(r->message);
  if (ans.ok && !r->fd) return fail(Errc::invalid_input, "attach answer without a console");
  console = std::move(r->fd);
  return ans;
}

Result<ipc::LogAns> BrokerClient::console_log(unsigned lines) {
  return as<ipc::LogAns>(call(ipc::LogReq{lines}, ipc::Type::log_ans));
}

Result<ipc::WhoAns> BrokerClient::who() { return as<ipc::WhoAns>(call(ipc::WhoReq{}, ipc::Type::who_ans)); }

Result<ipc::ActionAns> BrokerClient::sysrq(char key) {
  return as<ipc::ActionAns>(call(ipc::SysrqReq{static_cast<uint8_t>(key)}, ipc::Type::action_ans));
}

Result<ipc::WeblinkAns> BrokerClient::weblink() {
  return as<ipc::WeblinkAns>(call(ipc::WeblinkReq{}, ipc::Type::weblink_ans));
}

Result<ipc::MetricsAns> BrokerClient::metrics() {
  return as<ipc::MetricsAns>(call(ipc::MetricsReq{}, ipc::Type::metrics_ans));
}

Result<ipc::NodeConnectAns> BrokerClient::node_connect(UniqueFd& node, const std::string& moved_from) {
  auto r = call(ipc::NodeConnectReq{moved_from}, ipc::Type::node_connect_ans);
  if (!r) return tl::unexpected(r.error());
  auto ans = std::get<ipc::NodeConnectAns>(r->message);
  if (ans.ok && !r->fd) return fail(Errc::invalid_input, "node answer without a connection");
  node = std::move(r->fd);
  return ans;
}

void BrokerClient::log(int level, std::string_view text) noexcept {
  try {
    (void)ipc::send(fd_, ipc::LogRecord{static_cast<uint8_t>(level), std::string(text.substr(0, 4000))});
  } catch (...) {
    // Logging must never take the session down.
  }
}

}  // namespace xcg::gateway
