// The text frames of the browser console's WebSocket (docs/web.md, "WebSocket protocol"): one
// command each from the page, one answer each from us, asked of the broker like the menu's
// choices. The broker enforces the rights; a read-only session is refused here already.
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"
#include "config/config.h"
#include "gateway/session/broker_client.h"
#include "gateway/session/customer_session.h"

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

// The answer to a command on a fleet's front, where only the console is relayed so far:
// the frame its answer would be, saying so.
std::string not_relayed_frame(const WebCommand& command);

// The answer to a text frame that is no command.
std::string refusal_frame(const Error& error);

}  // namespace xcg::gateway::web
