#include "gateway/web/web_session.h"

#include "base/log.h"
#include "gateway/web/web_commands.h"

namespace xcg::gateway::web {
namespace {

// The node's console wants a terminal; its size does not travel (docs/web.md).
const PtySize kRelayedPty{"xterm", 80, 24};

constexpr std::string_view kNodeBusy = "the node cannot take this request now; try again";

}  // namespace

bool WebSession::authorize(std::string_view token, bool text, std::string forwarded_for,
                           std::string user_agent) {
  if (tried_) return false;
  tried_ = true;
  if (!text || token.empty() || token.size() > kMaxTokenBytes) {
    refuse();
    return false;
  }
  auto ans = broker_.web_authorize(
      ipc::WebAuthorizeReq{std::string(token), std::move(forwarded_for), std::move(user_agent)});
  if (!ans || !ans->ok) {
    if (!ans) log::info("web_authorize failed: {}", ans.error().message);
    refuse();
    return false;
  }
  start(*ans);
  return true;
}

// A web session always starts in the console (docs/web.md); Ctrl-] gives the menu. The broker
// accepts a token only for a domain that allows the console, but lists no actions for a
// read-only one: the console is implied. Through a front the console is the node's exec
// `console`, and the hello waits for the node to say which actions it offers.
void WebSession::start(const ipc::AuthorizeAns& ans) {
  customer_ = Customer{ans.domain, true, ans.actions, ans.readonly, ans.fingerprint};
  if (relay_) return start_relay();
  if (!config::allows(customer_.actions, config::Action::console))
    customer_.actions.insert(customer_.actions.begin(), config::Action::console);
  terminal_.send_text(hello_frame(customer_));
  session_ = std::make_unique<CustomerSession>(terminal_, broker_, customer_, idle_timeout_s_);
  session_->start_shell();
}

void WebSession::start_relay() {
  auto relay = relay_(terminal_, customer_);
  if (!relay) return terminal_.end(1, "internal error");
  relay->when_connected([this](const std::optional<std::string>& actions) { greet_through_front(actions); });
  relay_core_ = relay.get();
  session_ = std::move(relay);
  session_->pty(kRelayedPty);
  session_->start_exec("console");
}

// The page offers what the node would, within what the link allows; a node that does not say
// (or could not be reached) leaves only the console.
void WebSession::greet_through_front(const std::optional<std::string>& node_actions) {
  customer_.actions = offered_by_node(node_actions.value_or(""), customer_.actions);
  terminal_.send_text(hello_frame(customer_));
}

// Answered by the node that runs the domain, with its rights and audit, at a later step.
void WebSession::ask_node(const WebCommand& command) {
  if (auto refusal = local_refusal(command, customer_)) return terminal_.send_text(*refusal);
  bool asked = relay_core_->ask(node_command(command), [this, command](const NodeAnswer& answer) {
    terminal_.send_text(node_answer_frame(command, answer));
  });
  if (!asked) terminal_.send_text(unanswered_frame(command, kNodeBusy));
}

void WebSession::refuse() { terminal_.end(1, kRefusedReason); }

void WebSession::binary(std::string_view bytes, Clock::time_point now) {
  // The core drops a read-only viewer's keystrokes on the console; Ctrl-] still reaches it.
  if (session_) session_->input(bytes, now);
}

void WebSession::text(std::string_view command) {
  if (!session_) return;
  auto parsed = parse_web_command(command);
  if (!parsed) return terminal_.send_text(refusal_frame(parsed.error()));
  if (relay_core_) return ask_node(*parsed);
  terminal_.send_text(answer_web_command(*parsed, customer_, broker_));
}

void WebSession::hung_up() {
  terminal_.gone();
  if (session_) session_->hung_up();
}

void WebSession::console_readable() {
  if (session_) session_->console_readable();
}

void WebSession::step(Clock::time_point now) {
  if (!session_) {
    if (broker_.revoked()) terminal_.end(1, *broker_.revoked());
    return;
  }
  session_->step(now);
}

std::optional<WatchedConsole> WebSession::console_to_watch() const {
  auto fd = session_ ? session_->console_to_watch() : std::nullopt;
  if (!fd) return std::nullopt;
  return WatchedConsole{*fd, session_->console_attachments()};
}

}  // namespace xcg::gateway::web
