#include "gateway/web/web_commands.h"

#include <charconv>

#include <fmt/format.h>

#include "base/text.h"
#include "menu/commands.h"

namespace xcg::gateway::web {
namespace {

using Kind = WebCommand::Kind;

Error invalid(std::string_view text) {
  return Error{Errc::invalid_input, "unknown command '" + printable(text.substr(0, 40)) + "'"};
}

std::optional<unsigned> parse_lines(std::string_view s) {
  unsigned n = 0;
  if (s.empty() || s.front() == '0') return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size() || n > kMaxWebLogLines) return std::nullopt;
  return n;
}

std::optional<config::Action> parse_power_action(std::string_view s) {
  auto a = config::parse_action(s);
  if (!a || *a == config::Action::console || *a == config::Action::sysrq) return std::nullopt;
  return a;
}

std::optional<WebCommand> parse_with_argument(std::string_view verb, std::string_view arg) {
  if (verb == "log") {
    auto n = parse_lines(arg);
    if (n) return WebCommand{.kind = Kind::log, .lines = *n};
  } else if (verb == "sysrq") {
    if (arg.size() == 1 && config::valid_sysrq_key(arg[0]))
      return WebCommand{.kind = Kind::sysrq, .key = arg[0]};
  } else if (verb == "action") {
    auto a = parse_power_action(arg);
    if (a) return WebCommand{.kind = Kind::action, .action = *a};
  }
  return std::nullopt;
}

// The right a command needs; nullopt for those that only read.
std::optional<config::Action> needed_right(const WebCommand& c) {
  if (c.kind == Kind::action) return c.action;
  if (c.kind == Kind::sysrq || c.kind == Kind::nmi) return config::Action::sysrq;
  return std::nullopt;
}

template <class Answer>
std::string text_of(const Result<Answer>& answer) {
  return answer ? answer->text : answer.error().message;
}

std::string run_action(const WebCommand& c, BrokerClient& broker) {
  auto ans = c.kind == Kind::action ? broker.action(c.action) : broker.sysrq(c.kind == Kind::nmi ? 0 : c.key);
  return "result " + printable(text_of(ans));
}

std::string who_frame(BrokerClient& broker) {
  auto r = broker.who();
  if (!r) return "who " + printable(r.error().message);
  std::string frame = "who";
  for (size_t i = 0; i < r->viewers.size(); ++i) frame += (i == 0 ? " " : "\n") + printable(r->viewers[i]);
  return frame;
}

}  // namespace

Result<WebCommand> parse_web_command(std::string_view text) {
  if (text.size() > kMaxCommandBytes) return tl::unexpected(invalid(text));
  if (text == "status") return WebCommand{Kind::status};
  if (text == "who") return WebCommand{Kind::who};
  if (text == "nmi") return WebCommand{Kind::nmi};
  auto space = text.find(' ');
  if (space == std::string_view::npos) return tl::unexpected(invalid(text));
  auto c = parse_with_argument(text.substr(0, space), text.substr(space + 1));
  if (!c) return tl::unexpected(invalid(text));
  return *c;
}

std::string hello_frame(const Customer& customer) {
  std::string frame = "hello " + customer.domain + (customer.readonly ? " r" : " w");
  if (customer.readonly) return frame;
  for (auto a : customer.actions) frame += " " + std::string(config::action_name(a));
  return frame;
}

std::string answer_web_command(const WebCommand& command, const Customer& customer, BrokerClient& broker) {
  if (auto right = needed_right(command)) {
    if (customer.readonly) return "result this session is read-only";
    if (!config::allows(customer.actions, *right)) return "result not allowed for this link";
    return run_action(command, broker);
  }
  if (command.kind == Kind::status) return "status " + printable(text_of(broker.status()));
  if (command.kind == Kind::who) return who_frame(broker);
  auto log = broker.console_log(command.lines);
  return "log " + (log && log->ok ? menu::printable_lines(log->text, "\n") : printable(text_of(log)));
}

std::string not_relayed_frame(const WebCommand& command) {
  constexpr std::string_view kText = "not available through a front yet";
  switch (command.kind) {
    case Kind::status: return fmt::format("status {}", kText);
    case Kind::who: return fmt::format("who {}", kText);
    case Kind::log: return fmt::format("log {}", kText);
    default: return fmt::format("result {}", kText);
  }
}

std::string refusal_frame(const Error& error) { return "result " + error.message; }

}  // namespace xcg::gateway::web
