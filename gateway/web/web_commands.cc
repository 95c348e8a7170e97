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

std::optional<std::string> local_refusal(const WebCommand& command, const Customer& customer) {
  auto right = needed_right(command);
  if (!right) return std::nullopt;
  if (customer.readonly) return "result this session is read-only";
  if (!config::allows(customer.actions, *right)) return "result not allowed for this link";
  return std::nullopt;
}

std::string answer_web_command(const WebCommand& command, const Customer& customer, BrokerClient& broker) {
  if (auto refusal = local_refusal(command, customer)) return *refusal;
  if (needed_right(command)) return run_action(command, broker);
  if (command.kind == Kind::status) return "status " + printable(text_of(broker.status()));
  if (command.kind == Kind::who) return who_frame(broker);
  auto log = broker.console_log(command.lines);
  return "log " + (log && log->ok ? menu::printable_lines(log->text, "\n") : printable(text_of(log)));
}

std::string node_command(const WebCommand& command) {
  switch (command.kind) {
    case Kind::status: return "status";
    case Kind::who: return "who";
    case Kind::log: return fmt::format("log -n {}", command.lines);
    case Kind::action: return std::string(config::action_name(command.action));
    case Kind::sysrq: return fmt::format("sysrq {}", command.key);
    case Kind::nmi: return "nmi";
  }
  return "status";
}

std::string unanswered_frame(const WebCommand& command, std::string_view text) {
  switch (command.kind) {
    case Kind::status: return fmt::format("status {}", printable(text));
    case Kind::who: return fmt::format("who {}", printable(text));
    case Kind::log: return fmt::format("log {}", printable(text));
    default: return fmt::format("result {}", printable(text));
  }
}

// The node's exec `who` prints one viewer a line, `log N` the lines; the others one sentence.
std::string node_answer_frame(const WebCommand& command, const NodeAnswer& answer) {
  if (!answer.ok) return unanswered_frame(command, answer.text);
  if (command.kind == Kind::log) return "log " + menu::printable_lines(answer.text, "\n");
  if (command.kind != Kind::who) return unanswered_frame(command, answer.text);
  std::string frame = "who";
  std::string_view rest = answer.text;
  for (bool first = true; !rest.empty(); first = false) {
    auto end = rest.find('\n');
    frame += (first ? " " : "\n") + printable(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
  }
  return frame;
}

std::vector<config::Action> offered_by_node(std::string_view words,
                                            const std::vector<config::Action>& allowed) {
  std::vector<config::Action> out{config::Action::console};
  while (!words.empty()) {
    auto end = words.find(' ');
    auto action = config::parse_action(words.substr(0, end));
    if (action && *action != config::Action::console && config::allows(allowed, *action))
      out.push_back(*action);
    words = end == std::string_view::npos ? std::string_view() : words.substr(end + 1);
  }
  return out;
}

std::string refusal_frame(const Error& error) { return "result " + error.message; }

}  // namespace xcg::gateway::web
