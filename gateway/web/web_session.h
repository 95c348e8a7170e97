// One browser console session once the WebSocket is open, without the transport: the token
// goes to the broker, then the core runs over the WebSocketTerminal, binary frames are
// keystrokes and text frames commands (web_commands.h). The core is the CustomerSession, or on a
// fleet's front the NodeRelay running the node's console (docs/web.md, "Through a front"). The
// transport (web_transport.h) calls these on its events and step() after each.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/session/broker_client.h"
#include "gateway/session/customer_session.h"
#include "gateway/session/relay_core.h"
#include "gateway/web/session_watch.h"
#include "gateway/web/websocket_terminal.h"

namespace xcg::gateway::web {

inline constexpr size_t kMaxTokenBytes = 256;
inline constexpr std::string_view kRefusedReason = "this link is not valid (any more)";

struct WebCommand;

class WebSession {
 public:
  using Clock = CustomerSession::Clock;
  using MakeRelay = std::function<std::unique_ptr<RelayCore>(Terminal&, const Customer&)>;

  // `relay`: the front's core (nullptr on a single host or a node: the CustomerSession).
  WebSession(BrokerClient& broker, unsigned idle_timeout_s, MakeRelay relay = nullptr)
      : broker_(broker), idle_timeout_s_(idle_timeout_s), relay_(std::move(relay)) {}

  // The first message: a text frame holding the token. True if the broker accepted it; the
  // session then starts in the console and "hello ..." is queued. Otherwise the terminal holds
  // the close frame (1008). One attempt per connection.
  bool authorize(std::string_view token, bool text, std::string forwarded_for, std::string user_agent);
  bool authorized() const { return session_ != nullptr; }

  void binary(std::string_view bytes, Clock::time_point now);
  void text(std::string_view command);
  void hung_up();
  void console_readable();
  void step(Clock::time_point now);

  std::optional<WatchedConsole> console_to_watch() const;
  WebSocketTerminal& terminal() { return terminal_; }

 private:
  void refuse();
  void start(const ipc::AuthorizeAns& ans);
  void start_relay();
  void greet_through_front(const std::optional<std::string>& node_actions);
  void ask_node(const WebCommand& command);

  BrokerClient& broker_;
  unsigned idle_timeout_s_;
  MakeRelay relay_;
  WebSocketTerminal terminal_;
  bool tried_ = false;
  Customer customer_;
  std::unique_ptr<ChannelCore> session_;
  RelayCore* relay_core_ = nullptr;  // session_, on a front
};

}  // namespace xcg::gateway::web
