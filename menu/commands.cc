#include "menu/commands.h"

#include <array>
#include <charconv>
#include <utility>

#include "base/text.h"

namespace xcg::menu {
namespace {

constexpr size_t kMaxCommandLength = 256;
constexpr size_t kMaxEchoedLength = 40;
constexpr size_t kHelpVerbWidth = 12;
constexpr size_t kMaxViewersLine = 200;
constexpr char kEsc = 0x1b;
constexpr char kBel = 0x07;

constexpr std::string_view kLogUsage = "usage: log [--lines N | -n N]";
constexpr std::string_view kSysrqUsage = "usage: sysrq KEY, KEY one of 0-9 a-z ('sysrq h' lists them)";

// Verbs that take no arguments.
constexpr std::array<std::pair<std::string_view, Command>, 10> kPlainVerbs{{
    {"status", Command::status},
    {"console", Command::console},
    {"start", Command::start},
    {"shutdown", Command::shutdown},
    {"reboot", Command::reboot},
    {"destroy", Command::destroy},
    {"help", Command::help},
    {"who", Command::who},
    {"nmi", Command::nmi},
    {"weblink", Command::weblink},
}};

// Words separated by spaces and tabs; other whitespace inside a word keeps it from matching.
std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> words;
  size_t at = 0;
  while (at < s.size()) {
    size_t end = s.find_first_of(" \t", at);
    if (end == std::string_view::npos) end = s.size();
    if (end > at) words.push_back(s.substr(at, end - at));
    at = end + 1;
  }
  return words;
}

// `text` fit to quote in a one-line message.
std::string quoted(std::string_view text) {
  std::string shown = printable(text, kMaxEchoedLength);
  if (text.size() > kMaxEchoedLength) shown += "...";
  return "'" + shown + "'";
}

tl::unexpected<Error> usage_error(std::string message) {
  return fail(Errc::invalid_input, std::move(message));
}

Result<unsigned> parse_line_count(std::string_view text) {
  unsigned n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  bool digits_only = !text.empty() && text.front() != '-' && text.front() != '+';
  if (!digits_only || ec != std::errc() || end != text.data() + text.size() || n < 1 || n > kMaxLogLines)
    return usage_error("log: bad line count " + quoted(text) + ": want a number from 1 to " +
                       std::to_string(kMaxLogLines));
  return n;
}

Result<ParsedCommand> parse_log(const std::vector<std::string_view>& args) {
  ParsedCommand parsed{Command::log};
  if (args.empty()) return parsed;
  if (args[0] != "--lines" && args[0] != "-n")
    return usage_error("log: unknown option " + quoted(args[0]) + "; " + std::string(kLogUsage));
  if (args.size() != 2) return usage_error(std::string(kLogUsage));
  auto lines = parse_line_count(args[1]);
  if (!lines) return tl::unexpected(lines.error());
  parsed.lines = *lines;
  return parsed;
}

Result<ParsedCommand> parse_sysrq(const std::vector<std::string_view>& args) {
  if (args.empty()) return usage_error("sysrq: no key given; " + std::string(kSysrqUsage));
  if (args.size() > 1) return usage_error(std::string(kSysrqUsage));
  if (args[0].size() != 1 || !valid_sysrq_key(args[0][0]))
    return usage_error("sysrq: bad key " + quoted(args[0]) + "; " + std::string(kSysrqUsage));
  ParsedCommand parsed{Command::sysrq};
  parsed.sysrq_key = args[0][0];
  return parsed;
}

void add_help_line(std::string& out, std::string_view verb, std::string_view summary) {
  out += "  ";
  out += verb;
  out.append(verb.size() < kHelpVerbWidth ? kHelpVerbWidth - verb.size() : 1, ' ');
  out += summary;
  out += '\n';
}

// The length of the escape sequence starting at text[0] == ESC (all of it if unterminated):
// CSI ("ESC [ params final") and OSC ("ESC ] ... BEL" or "... ESC \"); any other ESC takes
// one more byte.
size_t escape_length(std::string_view text) {
  if (text.size() < 2) return text.size();
  if (text[1] == '[') {
    for (size_t i = 2; i < text.size(); ++i) {
      if (text[i] >= 0x40 && text[i] <= 0x7e) return i + 1;
    }
    return text.size();
  }
  if (text[1] == ']') {
    for (size_t i = 2; i < text.size(); ++i) {
      if (text[i] == kBel) return i + 1;
      if (text[i] == kEsc && i + 1 < text.size() && text[i + 1] == '\\') return i + 2;
    }
    return text.size();
  }
  return 2;
}

}  // namespace

Result<ParsedCommand> parse_command(std::string_view text) {
  if (text.size() > kMaxCommandLength) return fail(Errc::invalid_input, "command too long");
  std::string_view trimmed = trim(text);
  if (trimmed.empty()) return fail(Errc::invalid_input, "no command given; try 'help'");
  auto words = split_words(trimmed);
  std::string_view verb = words[0];
  std::vector<std::string_view> args(words.begin() + 1, words.end());
  if (verb == "log") return parse_log(args);
  if (verb == "sysrq") return parse_sysrq(args);
  if (args.empty()) {
    for (const auto& [name, command] : kPlainVerbs) {
      if (verb == name) return ParsedCommand{command};
    }
  }
  return fail(Errc::invalid_input, "unknown command " + quoted(trimmed) + "; try 'help'");
}

std::optional<config::Action> required_action(Command c) {
  switch (c) {
    case Command::console: return config::Action::console;
    case Command::start: return config::Action::start;
    case Command::shutdown: return config::Action::shutdown;
    case Command::reboot: return config::Action::reboot;
    case Command::destroy: return config::Action::destroy;
    case Command::sysrq:
    case Command::nmi: return config::Action::sysrq;
    case Command::status:
    case Command::help:
    case Command::log:
    case Command::who:
    case Command::weblink: return std::nullopt;
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
    case config::Action::sysrq: return "send a Magic SysRq key to the guest";
  }
  return "";
}

std::string help_text(std::string_view domain, const std::vector<config::Action>& allowed, bool readonly) {
  std::string name = printable(domain);
  std::string out = "Usage: ssh " + name + "@GATEWAY [COMMAND]\n\n";
  if (readonly) {
    out += "This key has read-only access to " + name +
           ": it can watch the console but not type into it or change the domain.\n\n";
  }
  out += "Commands:\n";
  add_help_line(out, "status", "show the state of " + name);
  bool may_console = config::allows(allowed, config::Action::console);
  if (readonly) {
    if (may_console) add_help_line(out, "console", "watch the console, view only (Ctrl-] detaches)");
  } else {
    for (config::Action a : config::kAllActions) {
      if (a == config::Action::sysrq || !config::allows(allowed, a)) continue;
      add_help_line(out, config::action_name(a), action_summary(a));
    }
    if (config::allows(allowed, config::Action::sysrq)) {
      add_help_line(out, "sysrq KEY", "send SysRq KEY (0-9, a-z) to the guest; 'sysrq h' lists them");
      add_help_line(out, "nmi", "send a non-maskable interrupt (NMI) to the guest");
    }
  }
  add_help_line(
      out, "log [-n N]",
      "show the last N lines of the console log (default " + std::to_string(kDefaultLogLines) + ")");
  add_help_line(out, "who", "list who is attached to the console");
  add_help_line(out, "weblink", "print a one-time link to this console in a browser");
  add_help_line(out, "help", "show this text");
  out += "\nWithout a command you get the menu; in the console, Ctrl-] leaves it.\n";
  return out;
}

std::string printable_lines(std::string_view text, std::string_view eol) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    auto u = static_cast<unsigned char>(c);
    if (c == '\r' || c == '\n') {
      // CR LF, CR CR LF (a tty's ONLCR on top of CR LF), a lone LF or a lone CR: one line end.
      while (i < text.size() && text[i] == '\r') ++i;
      if (i < text.size() && text[i] == '\n') ++i;
      out += eol;
      continue;
    }
    if (c == kEsc) {
      i += escape_length(text.substr(i));
      continue;
    }
    if (u >= 0x80 && u < 0xc0) {
      ++i;  // a UTF-8 continuation byte: its character already became one '?'
      continue;
    }
    out += (c == '\t' || (c >= 0x20 && c <= 0x7e)) ? c : '?';
    ++i;
  }
  return out;
}

std::string viewers_line(const std::vector<std::string>& viewers) {
  if (viewers.empty()) return "";
  std::string out = "viewers: ";
  for (size_t i = 0; i < viewers.size(); ++i) {
    std::string entry = printable(viewers[i]);
    if (i > 0 && out.size() + 2 + entry.size() > kMaxViewersLine) {
      out += "; and " + std::to_string(viewers.size() - i) + " more";
      break;
    }
    if (i > 0) out += "; ";
    out += entry;
  }
  return out;
}

ConsoleInput scan_console_input(std::string_view bytes) {
  size_t at = bytes.find(kDetachKey);
  if (at == std::string_view::npos) return {bytes, false};
  return {bytes.substr(0, at), true};
}

}  // namespace xcg::menu
