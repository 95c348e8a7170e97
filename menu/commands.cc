#include "menu/commands.h"

#include <algorithm>
#include <array>
#include <utility>

namespace xcg::menu {
namespace {

constexpr size_t kMaxCommandLength = 256;
constexpr size_t kMaxEchoedLength = 40;

constexpr std::array<std::pair<std::string_view, Command>, 7> kVerbs{{
    {"status", Command::status},
    {"console", Command::console},
    {"start", Command::start},
    {"shutdown", Command::shutdown},
    {"reboot", Command::reboot},
    {"destroy", Command::destroy},
    {"help", Command::help},
}};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool contains(const std::vector<config::Action>& actions, config::Action a) {
  return std::find(actions.begin(), actions.end(), a) != actions.end();
}

void add_help_line(std::string& out, std::string_view verb, std::string_view summary) {
  out += "  ";
  out += verb;
  out.append(verb.size() < 10 ? 10 - verb.size() : 1, ' ');
  out += summary;
  out += '\n';
}

}  // namespace

Result<Command> parse_command(std::string_view text) {
  if (text.size() > kMaxCommandLength) return fail(Errc::invalid_input, "command too long");
  std::string_view verb = trim(text);
  if (verb.empty()) return fail(Errc::invalid_input, "no command given; try 'help'");
  for (const auto& [name, command] : kVerbs) {
    if (verb == name) return command;
  }
  std::string shown = printable(verb.substr(0, kMaxEchoedLength));
  if (verb.size() > kMaxEchoedLength) shown += "...";
  return fail(Errc::invalid_input, "unknown command '" + shown + "'; try 'help'");
}

std::optional<config::Action> required_action(Command c) {
  switch (c) {
    case Command::console: return config::Action::console;
    case Command::start: return config::Action::start;
    case Command::shutdown: return config::Action::shutdown;
    case Command::reboot: return config::Action::reboot;
    case Command::destroy: return config::Action::destroy;
    case Command::status:
    case Command::help: return std::nullopt;
  }
  return std::nullopt;
}

std::string_view action_summary(config::Action a) {
  switch (a) {
    case config::Action::console: return "attach to the console (Ctrl-] detaches)";
    case config::Action::start: return "power on";
    case config::Action::shutdown: return "ask the guest to shut down";
    case config::Action::reboot: return "restart the guest";
    case config::Action::destroy: return "power off at once";
  }
  return "";
}

std::string help_text(std::string_view domain, const std::vector<config::Action>& allowed) {
  std::string name = printable(domain);
  std::string out = "Usage: ssh " + name + "@GATEWAY [COMMAND]\n\nCommands:\n";
  add_help_line(out, "status", "show the state of " + name);
  for (config::Action a : config::kAllActions) {
    if (contains(allowed, a)) add_help_line(out, config::action_name(a), action_summary(a));
  }
  add_help_line(out, "help", "show this text");
  out += "\nWithout a command you get the menu; in the console, Ctrl-] leaves it.\n";
  return out;
}

std::string printable(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

ConsoleInput scan_console_input(std::string_view bytes) {
  size_t at = bytes.find(kDetachKey);
  if (at == std::string_view::npos) return {bytes, false};
  return {bytes.substr(0, at), true};
}

}  // namespace xcg::menu
