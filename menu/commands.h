// Exec commands (`ssh web1@gw COMMAND`): a fixed verb list, never a shell.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "config/config.h"

namespace xcg::menu {

enum class Command { status, console, start, shutdown, reboot, destroy, help };

// Exact verbs only, surrounding ASCII whitespace ignored. Anything else, including NULs,
// extra arguments, overlong input and shell syntax, is an invalid_input error whose message
// is one printable line ("unknown command 'rm'; try 'help'").
Result<Command> parse_command(std::string_view text);

// The lifecycle/console action a command needs permission for; nullopt for status and help.
std::optional<config::Action> required_action(Command c);

// Usage text listing the commands this domain allows (CRLF not included; '\n' lines).
std::string help_text(std::string_view domain, const std::vector<config::Action>& allowed);

// One short phrase per action ("power off at once"), shared by the menu and help_text.
std::string_view action_summary(config::Action a);

// `text` with every byte outside printable ASCII replaced by '?', so that text we echo to a
// customer's terminal can never carry control sequences or break a line.
std::string printable(std::string_view text);

// Console input: everything before the first Ctrl-] (0x1d) goes to the guest; the escape
// byte itself and anything after it are dropped and the viewer detaches.
inline constexpr char kDetachKey = 0x1d;
struct ConsoleInput {
  std::string_view to_guest;
  bool detach = false;
};
ConsoleInput scan_console_input(std::string_view bytes);

}  // namespace xcg::menu
