#include "menu/commands.h"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

using xcg::Errc;
using xcg::config::Action;
using xcg::menu::Command;
using xcg::menu::help_text;
using xcg::menu::parse_command;
using xcg::menu::required_action;
using xcg::menu::scan_console_input;

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
                    Case{"help", Command::help});
  auto r = parse_command(c.text);
  REQUIRE(r.has_value());
  CHECK(*r == c.command);

  auto padded = parse_command(" \t" + c.text + " \r\n");
  REQUIRE(padded.has_value());
  CHECK(*padded == c.command);
}

TEST_CASE("parse_command takes a trailing newline as whitespace") {
  auto r = parse_command("reboot\n");
  REQUIRE(r.has_value());
  CHECK(*r == Command::reboot);
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
  CHECK(*r == Command::status);
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
  CHECK(rejection("r\xc3\xa9" "boot") == "unknown command 'r??boot'; try 'help'");
  CHECK(rejection(std::string(40, 'a')) ==
        "unknown command '" + std::string(40, 'a') + "'; try 'help'");
  CHECK(rejection(std::string(41, 'a')) ==
        "unknown command '" + std::string(40, 'a') + "...'; try 'help'");
  CHECK(rejection(std::string(256, 'b')) ==
        "unknown command '" + std::string(40, 'b') + "...'; try 'help'");
}

TEST_CASE("required_action maps commands to the permission they need") {
  CHECK(required_action(Command::console) == Action::console);
  CHECK(required_action(Command::start) == Action::start);
  CHECK(required_action(Command::shutdown) == Action::shutdown);
  CHECK(required_action(Command::reboot) == Action::reboot);
  CHECK(required_action(Command::destroy) == Action::destroy);
  CHECK_FALSE(required_action(Command::status).has_value());
  CHECK_FALSE(required_action(Command::help).has_value());
}

TEST_CASE("help_text lists only allowed commands") {
  std::vector<Action> all(std::begin(xcg::config::kAllActions),
                          std::end(xcg::config::kAllActions));
  std::string full = help_text("web1", all);
  for (std::string_view verb : {"status", "console", "start", "shutdown", "reboot", "destroy",
                                "help"}) {
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
    auto in = scan_console_input("\x1d" "abc");
    CHECK(in.to_guest.empty());
    CHECK(in.detach);
  }
  SECTION("in the middle") {
    auto in = scan_console_input("ab\x1d" "cd");
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
