// Exec commands (`ssh web1@gw COMMAND`): a fixed verb list, never a shell.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/text.h"
#include "config/config.h"

namespace xcg::menu {

enum class Command { status, console, start, shutdown, reboot, destroy, help, log, who, sysrq, nmi, weblink };

inline constexpr unsigned kDefaultLogLines = 100;
inline constexpr unsigned kMaxLogLines = 10000;

struct ParsedCommand {
  Command command = Command::help;
  unsigned lines = kDefaultLogLines;  // log: how many lines
  char sysrq_key = 0;                 // sysrq: the key, one of [0-9a-z]
  bool operator==(const ParsedCommand&) const = default;
};

// Surrounding ASCII whitespace is ignored; words are separated by spaces or tabs. The forms:
//   status | console | start | shutdown | reboot | destroy | help | who | nmi | weblink
//   log | log --lines N | log -n N        (N in 1..10000, default 100)
//   sysrq KEY                              (KEY one of [0-9a-z])
// Anything else, including NULs, extra arguments, overlong input and shell syntax, is an
// invalid_input error whose message is one printable line ("unknown command 'rm'; try 'help'").
Result<ParsedCommand> parse_command(std::string_view text);

// True if `key` is a SysRq key the customer may send: one of [0-9a-z].
using config::valid_sysrq_key;

// The permission a command needs; nullopt for status, help, log, who and weblink.
std::optional<config::Action> required_action(Command c);

// Usage text listing the commands this domain allows (CRLF not included; '\n' lines). For a
// read-only key it says so and lists only what such a key can do.
std::string help_text(std::string_view domain, const std::vector<config::Action>& allowed,
                      bool readonly = false);

// One short phrase per action ("power off at once"), shared by the menu and help_text.
std::string_view action_summary(config::Action a);

// Console log text made safe to print: every line end (CR LF, LF, or a lone CR) becomes `eol`,
// tabs stay, CSI escape sequences (colours, cursor moves) are dropped, and every other byte
// outside printable ASCII becomes '?'.
std::string printable_lines(std::string_view text, std::string_view eol);

// The one-line summary of a domain's console viewers shown under the menu's status line:
// "viewers: alice@laptop, since 10:02:11 UTC; bob (read-only), since 10:05:40 UTC", or "" for
// none. Long lists are cut short with "; and N more".
std::string viewers_line(const std::vector<std::string>& viewers);

// Console input: everything before the first Ctrl-] (0x1d) goes to the guest; the escape
// byte itself and anything after it are dropped and the viewer detaches.
inline constexpr char kDetachKey = 0x1d;
struct ConsoleInput {
  std::string_view to_guest;
  bool detach = false;
};
ConsoleInput scan_console_input(std::string_view bytes);

}  // namespace xcg::menu
