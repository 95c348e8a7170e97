// The text frames of the browser console's WebSocket (docs/web.md, "WebSocket protocol"): one
// command each from the page, one answer each from us, asked of the broker like the menu's
// choices. The broker enforces the rights; a read-only session is refused here already.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "config/config.h"
#include "gateway/session/broker_client.h"
#include "gateway/session/customer_session.h"
#include "gateway/session/relay_core.h"

namespace xcg::gateway::web {

inline constexpr size_t kMaxCommandBytes = 1024;
inline constexpr unsigned kMaxWebLogLines = 200;

struct WebCommand {
  enum class Kind { status, who, log, action, sysrq, nmi } kind = Kind::status;
  config::Action action = config::Action::start;  // action: start, shutdown, reboot or destroy
  unsigned lines = 0;                             // log: 1..200
  char key = 0;                                   // sysrq: [0-9a-z]
  bool operator==(const WebCommand&) const = default;
};

// The forms, words separated by exactly one space:
//   status | who | nmi | log N (1..200) | sysrq K ([0-9a-z]) | action start|shutdown|reboot|destroy
// Anything else is an invalid_input error.
Result<WebCommand> parse_web_command(std::string_view text);

// The first text frame after the token was accepted: "hello DOMAIN r|w ACTION...", the actions
// the page may offer (none when read-only).
std::string hello_frame(const Customer& customer);

// Runs `command` and gives the text frame that answers it: "status TEXT", "who LINE\nLINE...",
// "log LINES" or "result TEXT".
std::string answer_web_command(const WebCommand& command, const Customer& customer, BrokerClient& broker);

// Why this session may not run `command` ("result ..."), or nothing if it may: the broker (or
// the node) refuses it too, but need not be asked.
std::optional<std::string> local_refusal(const WebCommand& command, const Customer& customer);

// Through a front, the node answers (docs/web.md, "Through a front"): the exec command an SSH
// customer would run there, and the text frame its answer makes.
std::string node_command(const WebCommand& command);
std::string node_answer_frame(const WebCommand& command, const NodeAnswer& answer);

// The frame that answers `command` with `text` when nobody could be asked.
std::string unanswered_frame(const WebCommand& command, std::string_view text);

// The actions named in the node's "ACTION..." that `allowed` allows too, with the console first.
std::vector<config::Action> offered_by_node(std::string_view words,
                                            const std::vector<config::Action>& allowed);

// The answer to a text frame that is no command.
std::string refusal_frame(const Error& error);

}  // namespace xcg::gateway::web
