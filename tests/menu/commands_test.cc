#include "menu/commands.h"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

using xcg::Errc;
using xcg::config::Action;
using xcg::menu::Command;
using xcg::menu::help_text;
using xcg::menu::parse_command;
using xcg::menu::ParsedCommand;
using xcg::menu::printable_lines;
using xcg::menu::required_action;
using xcg::menu::scan_console_input;
using xcg::menu::valid_sysrq_key;
using xcg::menu::viewers_line;

namespace {

bool one_printable_line(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// The error message parse_command gives for `text`; fails the test if it parses.
std::string rejection(std::string_view text) {
  auto r = parse_command(text);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == Errc::invalid_input);
  CHECK(one_printable_line(r.error().message));
  return r.error().message;
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("parse_command accepts every verb") {
  struct Case {
    std::string text;
    Command command;
  };
  auto c = GENERATE(Case{"status", Command::status}, Case{"console", Command::console},
                    Case{"start", Command::start}, Case{"shutdown", Command::shutdown},
                    Case{"reboot", Command::reboot}, Case{"destroy", Command::destroy},
                    Case{"help", Command::help}, Case{"log", Command::log}, Case{"who", Command::who},
                    Case{"nmi", Command::nmi});
  auto r = parse_command(c.text);
  REQUIRE(r.has_value());
  CHECK(*r == ParsedCommand{c.command});

  auto padded = parse_command(" \t" + c.text + " \r\n");
  REQUIRE(padded.has_value());
  CHECK(*padded == ParsedCommand{c.command});
}

TEST_CASE("parse_command takes a trailing newline as whitespace") {
  auto r = parse_command("reboot\n");
  REQUIRE(r.has_value());
  CHECK(r->command == Command::reboot);
}

TEST_CASE("parse_command rejects empty input") {
  CHECK(rejection("") == "no command given; try 'help'");
  CHECK(rejection(" \t\r\n") == "no command given; try 'help'");
}

TEST_CASE("parse_command rejects overlong input") {
  CHECK(rejection(std::string(257, 'x')) == "command too long");
  CHECK(rejection("status" + std::string(251, ' ')) == "command too long");
  // 256 bytes is still parsed: whitespace around a verb is fine at that length.
  auto r = parse_command("status" + std::string(250, ' '));
  REQUIRE(r.has_value());
  CHECK(r->command == Command::status);
}

TEST_CASE("parse_command rejects unknown commands, naming them safely") {
  CHECK(rejection("rm") == "unknown command 'rm'; try 'help'");
  CHECK(rejection("status now") == "unknown command 'status now'; try 'help'");
  CHECK(rejection("status; rm -rf /") == "unknown command 'status; rm -rf /'; try 'help'");
  CHECK(rejection("$(reboot)") == "unknown command '$(reboot)'; try 'help'");
  CHECK(rejection("statu") == "unknown command 'statu'; try 'help'");
  CHECK(rejection("STATUS") == "unknown command 'STATUS'; try 'help'");
  CHECK(rejection("reboot\nreboot") == "unknown command 'reboot?reboot'; try 'help'");
  CHECK(rejection(std::string("status\0", 7)) == "unknown command 'status?'; try 'help'");
  CHECK(rejection(std::string("\0reboot", 7)) == "unknown command '?reboot'; try 'help'");
  CHECK(rejection("\x1b[2Jhi") == "unknown command '?[2Jhi'; try 'help'");
  CHECK(rejection("del\x7f") == "unknown command 'del?'; try 'help'");
  CHECK(rejection("r\xc3\xa9"
                  "boot") == "unknown command 'r??boot'; try 'help'");
  CHECK(rejection(std::string(40, 'a')) == "unknown command '" + std::string(40, 'a') + "'; try 'help'");
  CHECK(rejection(std::string(41, 'a')) == "unknown command '" + std::string(40, 'a') + "...'; try 'help'");
  CHECK(rejection(std::string(256, 'b')) == "unknown command '" + std::string(40, 'b') + "...'; try 'help'");
}

TEST_CASE("required_action maps commands to the permission they need") {
  CHECK(required_action(Command::console) == Action::console);
  CHECK(required_action(Command::start) == Action::start);
  CHECK(required_action(Command::shutdown) == Action::shutdown);
  CHECK(required_action(Command::reboot) == Action::reboot);
  CHECK(required_action(Command::destroy) == Action::destroy);
  CHECK(required_action(Command::sysrq) == Action::sysrq);
  CHECK(required_action(Command::nmi) == Action::sysrq);
  CHECK_FALSE(required_action(Command::status).has_value());
  CHECK_FALSE(required_action(Command::help).has_value());
  CHECK_FALSE(required_action(Command::log).has_value());
  CHECK_FALSE(required_action(Command::who).has_value());
}

TEST_CASE("parse_command reads the log forms") {
  struct Case {
    std::string text;
    unsigned lines;
  };
  auto c = GENERATE(Case{"log", 100}, Case{"log --lines 20", 20}, Case{"log -n 5", 5}, Case{"log -n 1", 1},
                    Case{"log --lines 10000", 10000}, Case{" log\t-n \t 7 \r\n", 7}, Case{"log -n 007", 7});
  auto r = parse_command(c.text);
  REQUIRE(r.has_value());
  CHECK(r->command == Command::log);
  CHECK(r->lines == c.lines);
  CHECK(r->sysrq_key == 0);
}

TEST_CASE("parse_command rejects bad log forms with a usage line") {
  const std::string usage = "usage: log [--lines N | -n N]";
  const std::string range = ": want a number from 1 to 10000";
  CHECK(rejection("log -n 0") == "log: bad line count '0'" + range);
  CHECK(rejection("log -n 10001") == "log: bad line count '10001'" + range);
  CHECK(rejection("log --lines 99999999999999999999") ==
        "log: bad line count '99999999999999999999'" + range);
  CHECK(rejection("log -n -5") == "log: bad line count '-5'" + range);
  CHECK(rejection("log -n +5") == "log: bad line count '+5'" + range);
  CHECK(rejection("log -n 5x") == "log: bad line count '5x'" + range);
  CHECK(rejection("log -n 0x10") == "log: bad line count '0x10'" + range);
  CHECK(rejection("log -n \x1b[2J") == "log: bad line count '?[2J'" + range);
  CHECK(rejection("log -n") == usage);
  CHECK(rejection("log --lines") == usage);
  CHECK(rejection("log -n 5 6") == usage);
  CHECK(rejection("log -x 5") == "log: unknown option '-x'; " + usage);
  CHECK(rejection("log 5") == "log: unknown option '5'; " + usage);
  CHECK(rejection("log --lines=5") == "log: unknown option '--lines=5'; " + usage);
  CHECK(rejection("log; reboot") == "unknown command 'log; reboot'; try 'help'");
  CHECK(rejection("log\n-n 5") == "unknown command 'log?-n 5'; try 'help'");
}

TEST_CASE("parse_command reads sysrq KEY for every key in [0-9a-z]") {
  for (char key : std::string("0123456789abcdefghijklmnopqrstuvwxyz")) {
    auto r = parse_command(std::string("sysrq ") + key);
    REQUIRE(r.has_value());
    CHECK(r->command == Command::sysrq);
    CHECK(r->sysrq_key == key);
  }
  auto padded = parse_command("\tsysrq\t\th \n");
  REQUIRE(padded.has_value());
  CHECK(padded->sysrq_key == 'h');
}

TEST_CASE("parse_command rejects sysrq without exactly one good key") {
  const std::string usage = "usage: sysrq KEY, KEY one of 0-9 a-z ('sysrq h' lists them)";
  CHECK(rejection("sysrq") == "sysrq: no key given; " + usage);
  CHECK(rejection("sysrq  \t") == "sysrq: no key given; " + usage);
  CHECK(rejection("sysrq H") == "sysrq: bad key 'H'; " + usage);
  CHECK(rejection("sysrq hh") == "sysrq: bad key 'hh'; " + usage);
  CHECK(rejection("sysrq !") == "sysrq: bad key '!'; " + usage);
  CHECK(rejection("sysrq \x01") == "sysrq: bad key '?'; " + usage);
  CHECK(rejection(std::string("sysrq \0", 7)) == "sysrq: bad key '?'; " + usage);
  CHECK(rejection("sysrq h x") == usage);
  CHECK(rejection("sysrq\nh") == "unknown command 'sysrq?h'; try 'help'");
  CHECK(rejection("SYSRQ h") == "unknown command 'SYSRQ h'; try 'help'");
}

TEST_CASE("parse_command refuses arguments to verbs that take none") {
  CHECK(rejection("nmi now") == "unknown command 'nmi now'; try 'help'");
  CHECK(rejection("who am i") == "unknown command 'who am i'; try 'help'");
  CHECK(rejection("help log") == "unknown command 'help log'; try 'help'");
}

TEST_CASE("valid_sysrq_key takes digits and lower-case letters only") {
  CHECK(valid_sysrq_key('0'));
  CHECK(valid_sysrq_key('9'));
  CHECK(valid_sysrq_key('a'));
  CHECK(valid_sysrq_key('z'));
  for (char c : std::string("/:`{AZ \r\n\x1b\x7f")) CHECK_FALSE(valid_sysrq_key(c));
  CHECK_FALSE(valid_sysrq_key('\0'));
  CHECK_FALSE(valid_sysrq_key('\xe9'));
}

TEST_CASE("help_text lists only allowed commands") {
  std::vector<Action> all(std::begin(xcg::config::kAllActions), std::end(xcg::config::kAllActions));
  std::string full = help_text("web1", all);
  for (std::string_view verb : {"status", "console", "start", "shutdown", "reboot", "destroy", "help"}) {
    CHECK(contains(full, "\n  " + std::string(verb) + " "));
  }
  CHECK(contains(full, "web1"));
  CHECK(contains(full, "menu"));
  CHECK(contains(full, "Ctrl-]"));
  CHECK_FALSE(contains(full, "\r"));
  CHECK(full.back() == '\n');

  std::string some = help_text("web1", {Action::console, Action::reboot});
  CHECK(contains(some, "\n  status "));
  CHECK(contains(some, "\n  help "));
  CHECK(contains(some, "\n  console "));
  CHECK(contains(some, "\n  reboot "));
  CHECK_FALSE(contains(some, "\n  start "));
  CHECK_FALSE(contains(some, "\n  shutdown "));
  CHECK_FALSE(contains(some, "\n  destroy "));
  CHECK(contains(some, "Ctrl-]"));

  std::string none = help_text("web1", {});
  CHECK(contains(none, "\n  status "));
  CHECK(contains(none, "\n  help "));
  CHECK_FALSE(contains(none, "\n  console "));
  CHECK(contains(none, "menu"));
}

TEST_CASE("help_text lists log and who always, sysrq and nmi only when allowed") {
  std::vector<Action> all(std::begin(xcg::config::kAllActions), std::end(xcg::config::kAllActions));
  std::string full = help_text("web1", all);
  CHECK(contains(full, "\n  sysrq KEY "));
  CHECK(contains(full, "\n  nmi "));
  CHECK(contains(full, "\n  log [-n N] "));
  CHECK(contains(full, "\n  who "));
  CHECK_FALSE(contains(full, "read-only"));
  // Canonical order: lifecycle, then sysrq and nmi, then log, who, help.
  CHECK(full.find("\n  destroy ") < full.find("\n  sysrq "));
  CHECK(full.find("\n  nmi ") < full.find("\n  log "));
  CHECK(full.find("\n  who ") < full.find("\n  help "));

  std::string no_sysrq = help_text("web1", {Action::console, Action::start});
  CHECK_FALSE(contains(no_sysrq, "sysrq"));
  CHECK_FALSE(contains(no_sysrq, "\n  nmi "));
  CHECK(contains(no_sysrq, "\n  log "));
  CHECK(contains(no_sysrq, "\n  who "));

  std::string only_sysrq = help_text("web1", {Action::sysrq});
  CHECK(contains(only_sysrq, "\n  sysrq KEY "));
  CHECK(contains(only_sysrq, "\n  nmi "));
  CHECK_FALSE(contains(only_sysrq, "\n  console "));
}

TEST_CASE("help_text for a read-only key says so and lists only what it can do") {
  std::vector<Action> all(std::begin(xcg::config::kAllActions), std::end(xcg::config::kAllActions));
  std::string ro = help_text("web1", all, true);
  CHECK(contains(ro, "read-only"));
  for (std::string_view verb : {"status", "console", "log", "who", "help"})
    CHECK(contains(ro, "\n  " + std::string(verb) + " "));
  for (std::string_view verb : {"start", "shutdown", "reboot", "destroy", "sysrq", "nmi"})
    CHECK_FALSE(contains(ro, "\n  " + std::string(verb) + " "));
  CHECK(contains(ro, "view only"));
  CHECK_FALSE(contains(ro, "\r"));

  std::string ro_no_console = help_text("web1", {Action::reboot}, true);
  CHECK(contains(ro_no_console, "read-only"));
  CHECK_FALSE(contains(ro_no_console, "\n  console "));
  CHECK_FALSE(contains(ro_no_console, "\n  reboot "));
  CHECK(contains(ro_no_console, "\n  log "));
}

TEST_CASE("printable_lines normalises line ends and keeps escapes out") {
  CHECK(printable_lines("", "\r\n").empty());
  CHECK(printable_lines("a\r\nb\nc\rd", "\r\n") == "a\r\nb\r\nc\r\nd");
  CHECK(printable_lines("a\r\nb\nc", "\n") == "a\nb\nc");
  CHECK(printable_lines("a\r\r\nb", "\n") == "a\nb");  // CR CR LF is one line end
  CHECK(printable_lines("a\n\nb", "\n") == "a\n\nb");  // an empty line stays
  CHECK(printable_lines("a\r\n\r\nb", "\r\n") == "a\r\n\r\nb");
  CHECK(printable_lines("login: ", "\r\n") == "login: ");  // no line end is added
  CHECK(printable_lines("col1\tcol2", "\n") == "col1\tcol2");
  CHECK(printable_lines("[\x1b[0;32m  OK  \x1b[0m] Started", "\n") == "[  OK  ] Started");
  CHECK(printable_lines("\x1b]0;title\x07"
                        "after",
                        "\n") == "after");
  CHECK(printable_lines("\x1b]0;title\x1b\\after", "\n") == "after");
  CHECK(printable_lines("\x1b"
                        "cx",
                        "\n") == "x");
  CHECK(printable_lines("cut\x1b[1;3", "\n") == "cut");  // unterminated at the end
  CHECK(printable_lines("bell\x07 del\x7f nul", "\n") == "bell? del? nul");
  CHECK(printable_lines(std::string("a\0b", 3), "\n") == "a?b");
  CHECK(printable_lines("caf\xc3\xa9 \xe2\x82\xac", "\n") == "caf? ?");  // one '?' a character
}

TEST_CASE("viewers_line joins the viewers on one line") {
  CHECK(viewers_line({}).empty());
  CHECK(viewers_line({"alice@laptop, since 10:02:11 UTC"}) == "viewers: alice@laptop, since 10:02:11 UTC");
  CHECK(viewers_line({"alice, since 10:02:11 UTC", "bob (read-only), since 10:05:40 UTC"}) ==
        "viewers: alice, since 10:02:11 UTC; bob (read-only), since 10:05:40 UTC");
  CHECK(viewers_line({"eve\x1b[2J\r\n"}) == "viewers: eve?[2J??");

  std::vector<std::string> many;
  many.reserve(40);
  for (int i = 0; i < 40; ++i) many.push_back("viewer" + std::to_string(i) + ", since 10:00:00 UTC");
  std::string line = viewers_line(many);
  CHECK(one_printable_line(line));
  CHECK(line.size() <= 220);
  CHECK(contains(line, "viewer0, since"));
  CHECK_FALSE(contains(line, "viewer39"));
  CHECK(line.ends_with(" more"));
  // The count covers exactly the viewers left out.
  size_t shown = 0;
  for (const auto& v : many) shown += contains(line, v) ? 1 : 0;
  CHECK(contains(line, "; and " + std::to_string(many.size() - shown) + " more"));
}

TEST_CASE("scan_console_input splits at the first Ctrl-]") {
  SECTION("absent") {
    auto in = scan_console_input("ls -l\r");
    CHECK(in.to_guest == "ls -l\r");
    CHECK_FALSE(in.detach);
  }
  SECTION("empty") {
    auto in = scan_console_input("");
    CHECK(in.to_guest.empty());
    CHECK_FALSE(in.detach);
  }
  SECTION("at the start") {
    auto in = scan_console_input(
        "\x1d"
        "abc");
    CHECK(in.to_guest.empty());
    CHECK(in.detach);
  }
  SECTION("in the middle") {
    auto in = scan_console_input(
        "ab\x1d"
        "cd");
    CHECK(in.to_guest == "ab");
    CHECK(in.detach);
  }
  SECTION("at the end") {
    auto in = scan_console_input("abc\x1d");
    CHECK(in.to_guest == "abc");
    CHECK(in.detach);
  }
  SECTION("a pasted buffer with several escapes stops at the first") {
    std::string pasted;
    for (int i = 0; i < 100; ++i) pasted += "echo line " + std::to_string(i) + "\r\n";
    std::string before = pasted;
    pasted += std::string("\x1d") + "rm -rf /\r\n\x1d" + std::string("\0tail", 5);
    auto in = scan_console_input(pasted);
    CHECK(in.to_guest == before);
    CHECK(in.to_guest.data() == pasted.data());  // a view into the input, not a copy
    CHECK(in.detach);
  }
  SECTION("other control bytes pass through") {
    std::string bytes("\x03\x04\x1b[A\0\x1c\x1e", 8);
    auto in = scan_console_input(bytes);
    CHECK(in.to_guest == bytes);
    CHECK_FALSE(in.detach);
  }
}
