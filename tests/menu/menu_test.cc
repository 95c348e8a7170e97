#include "menu/menu.h"

#include <iterator>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using xcg::config::Action;
using xcg::menu::Menu;
using xcg::menu::Request;
using Kind = xcg::menu::Request::Kind;
using State = xcg::menu::Menu::State;

namespace {

const std::vector<Action> kAll(std::begin(xcg::config::kAllActions), std::end(xcg::config::kAllActions));
constexpr std::string_view kStatus = "web1: running, domid 3, 512 MiB, 1 vCPU, up 0:05:12";

const std::string kFullScreen =
    "\r\n"
    "web1: running, domid 3, 512 MiB, 1 vCPU, up 0:05:12\r\n"
    "\r\n"
    "  1) console   attach to the console (Ctrl-] detaches)\r\n"
    "  2) start     power on\r\n"
    "  3) shutdown  ask the guest to shut down\r\n"
    "  4) reboot    restart the guest\r\n"
    "  5) destroy   power off at once\r\n"
    "  6) sysrq     send a Magic SysRq key to the guest\r\n"
    "  7) log       show the recent console log\r\n"
    "  8) weblink   browser console link (valid once)\r\n"
    "  0) exit\r\n"
    "\r\n"
    "Choice: ";

// A menu showing its main screen, with the output so far already taken.
Menu shown_menu(const std::vector<Action>& allowed = kAll) {
  Menu menu("web1", allowed);
  menu.show_status(kStatus);
  menu.take_output();
  return menu;
}

Request action(Action a) { return Request{Kind::action, a}; }
Request kind(Kind k) { return Request{k, Action::console}; }

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("menu renders every action in canonical order") {
  Menu menu("web1", kAll);
  menu.show_status(kStatus);
  CHECK(menu.take_output() == kFullScreen);
  CHECK(menu.state() == State::main);
  CHECK(menu.take_output().empty());
}

TEST_CASE("menu renders only allowed actions, renumbered") {
  Menu menu("web1", {Action::reboot, Action::console});  // order given does not matter
  menu.show_status("web1: shut off");
  CHECK(menu.take_output() ==
        "\r\nweb1: shut off\r\n\r\n"
        "  1) console   attach to the console (Ctrl-] detaches)\r\n"
        "  2) reboot    restart the guest\r\n"
        "  3) log       show the recent console log\r\n"
        "  4) weblink   browser console link (valid once)\r\n"
        "  0) exit\r\n\r\nChoice: ");

  SECTION("numbers of hidden items select nothing") {
    for (std::string_view key : {"5", "6", "7", "8", "9"}) {
      CHECK(menu.feed(key) == Request{});
      CHECK(menu.state() == State::main);
      CHECK(menu.take_output() == "\a");
    }
  }
  SECTION("the renumbered item selects the right action") {
    CHECK(menu.feed("2") == Request{});
    CHECK(menu.state() == State::confirm);
    CHECK(menu.take_output() == "2\r\nReally reboot web1? [y/N] ");
    CHECK(menu.feed("y") == action(Action::reboot));
  }
}

TEST_CASE("menu with no actions offers only the log, the link and exit") {
  Menu menu = shown_menu({});
  menu.show_status("web1: running");
  std::string out = menu.take_output();
  CHECK(contains(out, "  1) log       show the recent console log\r\n  2) weblink   "));
  CHECK_FALSE(contains(out, "  3)"));
  CHECK(menu.feed("3") == Request{});
  CHECK(menu.feed("0") == kind(Kind::exit));
}

TEST_CASE("menu ignores input until the first status arrives") {
  Menu menu("web1", kAll);
  CHECK(menu.state() == State::waiting);
  CHECK(menu.feed("1") == Request{});
  CHECK(menu.feed("0") == Request{});
  CHECK(menu.take_output().empty());
}

TEST_CASE("menu console item attaches; detach returns to the main screen") {
  Menu menu = shown_menu();
  CHECK(menu.feed("1") == kind(Kind::attach_console));
  CHECK(menu.state() == State::console);
  std::string out = menu.take_output();
  CHECK(out.rfind("1\r\n", 0) == 0);
  CHECK(contains(out, "Ctrl-]"));

  // The session handles console bytes itself; stray feeds do nothing.
  CHECK(menu.feed("5y") == Request{});
  CHECK(menu.take_output().empty());

  menu.console_detached(kStatus);
  CHECK(menu.state() == State::main);
  CHECK(menu.take_output() == "\r\n[detached]\r\n" + kFullScreen);

  // And the cycle repeats.
  CHECK(menu.feed("1") == kind(Kind::attach_console));
  menu.console_detached("web1: running");
  CHECK(menu.state() == State::main);
  CHECK(contains(menu.take_output(), "[detached]\r\n\r\nweb1: running\r\n"));
}

TEST_CASE("menu reports a failed attach on its own line, then the main screen") {
  Menu menu = shown_menu();
  REQUIRE(menu.feed("1") == kind(Kind::attach_console));
  menu.take_output();
  menu.attach_failed("web1 is not running", kStatus);
  CHECK(menu.state() == State::main);
  CHECK(menu.take_output() == "\r\nweb1 is not running\r\n" + kFullScreen);
  CHECK(menu.feed("2") == action(Action::start));
}

TEST_CASE("menu start runs at once") {
  Menu menu = shown_menu();
  CHECK(menu.feed("2") == action(Action::start));
  CHECK(menu.state() == State::waiting);
  CHECK(menu.take_output() == "2");

  menu.action_done(Action::start, true, "web1: starting", "web1: running, domid 4");
  CHECK(menu.state() == State::main);
  std::string out = menu.take_output();
  CHECK(out.rfind("\r\nweb1: starting\r\n\r\nweb1: running, domid 4\r\n", 0) == 0);
  CHECK(out.size() >= 8);
  CHECK(out.substr(out.size() - 8) == "Choice: ");
}

TEST_CASE("menu destructive actions ask first") {
  struct Item {
    std::string key;
    Action action;
    std::string name;
  };
  auto item = GENERATE(Item{"3", Action::shutdown, "shutdown"}, Item{"4", Action::reboot, "reboot"},
                       Item{"5", Action::destroy, "destroy"});
  Menu menu = shown_menu();
  CHECK(menu.feed(item.key) == Request{});
  CHECK(menu.state() == State::confirm);
  CHECK(menu.take_output() == item.key + "\r\nReally " + item.name + " web1? [y/N] ");

  SECTION("y and Y confirm") {
    std::string yes = GENERATE("y", "Y");
    CHECK(menu.feed(yes) == action(item.action));
    CHECK(menu.state() == State::waiting);
    CHECK(menu.take_output() == yes);
    menu.action_done(item.action, true, "web1: done", kStatus);
    CHECK(menu.take_output() == "\r\nweb1: done\r\n" + kFullScreen);
    CHECK(menu.state() == State::main);
  }
  SECTION("anything else cancels") {
    std::string no =
        GENERATE(std::string("n"), std::string("N"), std::string("\r"), std::string("x"), std::string("\x03"),
                 std::string("\x04"), std::string("\x1b[A"), std::string(1, '\0'));
    CHECK(menu.feed(no) == kind(Kind::status));
    CHECK(menu.state() == State::waiting);
    CHECK(contains(menu.take_output(), "\r\ncancelled\r\n"));
    CHECK(menu.feed("y") == Request{});  // too late: nothing is pending any more
    menu.show_status(kStatus);
    CHECK(menu.take_output() == kFullScreen);
    CHECK(menu.state() == State::main);
  }
}

TEST_CASE("menu confirm echoes Ctrl-C the way a terminal does") {
  Menu menu = shown_menu();
  menu.feed("5");
  menu.take_output();
  CHECK(menu.feed("\x03") == kind(Kind::status));
  CHECK(menu.take_output() == "^C\r\ncancelled\r\n");
}

TEST_CASE("menu a failed action prints the broker's sentence") {
  Menu menu = shown_menu();
  menu.feed("3");
  REQUIRE(menu.feed("y") == action(Action::shutdown));
  menu.take_output();
  menu.action_done(Action::shutdown, false, "web1 is not running", "web1: shut off");
  std::string out = menu.take_output();
  CHECK(out.rfind("\r\nweb1 is not running\r\n\r\nweb1: shut off\r\n", 0) == 0);
  CHECK(menu.state() == State::main);
}

TEST_CASE("menu exit keys") {
  std::string key = GENERATE(std::string("0"), std::string("q"), std::string("\x03"), std::string("\x04"));
  Menu menu = shown_menu();
  CHECK(menu.feed(key) == kind(Kind::exit));
  CHECK(menu.state() == State::done);
  CHECK(contains(menu.take_output(), "\r\nBye.\r\n"));

  // Done is final.
  CHECK(menu.feed("1") == Request{});
  menu.show_status(kStatus);
  menu.console_detached(kStatus);
  menu.action_done(Action::start, true, "web1: starting", kStatus);
  menu.attach_failed("no", kStatus);
  CHECK(menu.take_output().empty());
  CHECK(menu.state() == State::done);
}

TEST_CASE("menu refresh keys ask for a fresh status") {
  std::string key = GENERATE(std::string("\r"), std::string("\n"), std::string("\r\n"), std::string("r"),
                             std::string("\x0c"));
  Menu menu = shown_menu();
  CHECK(menu.feed(key) == kind(Kind::status));
  CHECK(menu.state() == State::waiting);
  std::string out = menu.take_output();
  CHECK(contains(out, "\x1b[2J") == (key == "\x0c"));
  menu.show_status("web1: paused");
  CHECK(menu.state() == State::main);
  CHECK(contains(menu.take_output(), "\r\nweb1: paused\r\n"));
}

TEST_CASE("menu skips escape sequences entirely") {
  std::string seq =
      GENERATE(std::string("\x1b[2~"), std::string("\x1b[5~"), std::string("\x1bOP"), std::string("\x1bOQ"),
               std::string("\x1b[A"), std::string("\x1b[1;5C"), std::string("\x1b[15~"),
               std::string("\x1b"
                           "2"),
               std::string("\x1b\x1b[3~"), std::string("\x1b[200~"));
  Menu menu = shown_menu();
  CHECK(menu.feed(seq) == Request{});
  CHECK(menu.state() == State::main);
  CHECK(menu.take_output().empty());  // no echo, no bell

  SECTION("a key after the sequence still counts") { CHECK(menu.feed(seq + "2") == action(Action::start)); }
  SECTION("a sequence split over two feeds is skipped too") {
    Menu split = shown_menu();
    CHECK(split.feed(seq.substr(0, 2)) == Request{});
    CHECK(split.feed(seq.substr(2)) == Request{});
    CHECK(split.state() == State::main);
    CHECK(split.take_output().empty());
    CHECK(split.feed("2") == action(Action::start));
  }
}

TEST_CASE("menu a control key ends a broken escape sequence and still counts") {
  Menu menu = shown_menu();
  CHECK(menu.feed("\x1b[") == Request{});
  CHECK(menu.feed("\x03") == kind(Kind::exit));

  Menu other = shown_menu();
  CHECK(other.feed("\x1b"
                   "O\r") == kind(Kind::status));
}

TEST_CASE("menu a fresh screen forgets a half-read escape sequence") {
  Menu menu = shown_menu();
  CHECK(menu.feed("\x1b") == Request{});
  menu.show_status(kStatus);
  CHECK(menu.feed("2") == action(Action::start));
}

TEST_CASE("menu rings the bell at most once per feed") {
  Menu menu = shown_menu();
  CHECK(menu.feed("xyz\x7f") == Request{});
  CHECK(menu.take_output() == "\a");
  CHECK(menu.feed("\xc3\xa9") == Request{});  // UTF-8 é
  CHECK(menu.take_output() == "\a");
  CHECK(menu.state() == State::main);
}

TEST_CASE("menu drops the rest of a feed once something happens") {
  Menu menu = shown_menu();

  SECTION("a confirmation typed ahead of its question is dropped") {
    CHECK(menu.feed("4y") == Request{});
    CHECK(menu.state() == State::confirm);
    CHECK(menu.take_output() == "4\r\nReally reboot web1? [y/N] ");
    CHECK(menu.feed("y") == action(Action::reboot));
  }
  SECTION("the first request wins") {
    CHECK(menu.feed("21") == action(Action::start));
    CHECK(menu.take_output() == "2");
    CHECK(menu.state() == State::waiting);
  }
  SECTION("keys after a refresh are dropped") {
    CHECK(menu.feed("\r5") == kind(Kind::status));
    menu.show_status(kStatus);
    CHECK(menu.state() == State::main);
  }
  SECTION("unknown keys before a choice ring once and the choice counts") {
    CHECK(menu.feed("xx1") == kind(Kind::attach_console));
    CHECK(menu.take_output().rfind("\a1", 0) == 0);
  }
  SECTION("the answer to a confirm ends the feed") {
    menu.feed("5");
    CHECK(menu.feed("y0") == action(Action::destroy));
    CHECK(menu.state() == State::waiting);
  }
}

TEST_CASE("menu keeps control characters out of the terminal") {
  Menu menu("web1", kAll);
  menu.show_status("web1: \x1b[2Jrunning\r\n");
  std::string out = menu.take_output();
  CHECK(contains(out, "\r\nweb1: ?[2Jrunning??\r\n"));
  menu.feed("2");
  menu.action_done(Action::start, true, "web1\x07: starting", kStatus);
  CHECK(contains(menu.take_output(), "\r\nweb1?: starting\r\n"));
}

namespace {

const std::string kReadonlyScreen =
    "\r\n"
    "web1: running, domid 3, 512 MiB, 1 vCPU, up 0:05:12\r\n"
    "\r\n"
    "  1) console   watch the console, view only (Ctrl-] detaches)\r\n"
    "  2) log       show the recent console log\r\n"
    "  3) weblink   browser console link (valid once)\r\n"
    "  0) exit\r\n"
    "\r\n"
    "Choice: ";

const std::string kSysrqPrompt = "\r\nSysRq key for web1 (h for help, Enter cancels): ";

Request sysrq(char key) { return Request{Kind::sysrq, Action::console, key}; }

}  // namespace

TEST_CASE("menu for a read-only key lists only the console to watch, the log and exit") {
  Menu menu("web1", kAll, true);
  menu.show_status(kStatus);
  CHECK(menu.take_output() == kReadonlyScreen);

  SECTION("lifecycle and sysrq numbers select nothing") {
    for (std::string_view key : {"4", "5", "6", "7", "8"}) {
      CHECK(menu.feed(key) == Request{});
      CHECK(menu.state() == State::main);
      CHECK(menu.take_output() == "\a");
    }
  }
  SECTION("the console item attaches, saying it is view only") {
    CHECK(menu.feed("1") == kind(Kind::attach_console));
    CHECK(menu.take_output() == "1\r\n[console of web1, view only; Ctrl-] returns to this menu]\r\n");
    menu.console_detached(kStatus);
    CHECK(menu.take_output() == "\r\n[detached]\r\n" + kReadonlyScreen);
  }
  SECTION("the log item asks for the log") {
    CHECK(menu.feed("2") == kind(Kind::log));
    CHECK(menu.state() == State::waiting);
  }
}

TEST_CASE("menu for a read-only key without the console offers the log and exit") {
  Menu menu("web1", {Action::reboot, Action::sysrq}, true);
  menu.show_status("web1: running");
  CHECK(menu.take_output() ==
        "\r\nweb1: running\r\n\r\n"
        "  1) log       show the recent console log\r\n"
        "  2) weblink   browser console link (valid once)\r\n"
        "  0) exit\r\n\r\nChoice: ");
  CHECK(menu.feed("3") == Request{});
  CHECK(menu.feed("1") == kind(Kind::log));
}

TEST_CASE("menu without sysrq hides it and numbers the log after the others") {
  std::vector<Action> no_sysrq(kAll.begin(), kAll.end() - 1);
  REQUIRE(no_sysrq.back() == Action::destroy);
  Menu menu = shown_menu(no_sysrq);
  menu.show_status(kStatus);
  std::string out = menu.take_output();
  CHECK_FALSE(contains(out, "sysrq"));
  CHECK(contains(out, "  5) destroy   power off at once\r\n  6) log       "));
  CHECK(menu.feed("8") == Request{});
  CHECK(menu.feed("6") == kind(Kind::log));
}

TEST_CASE("menu weblink item asks for a link and prints it, then the main screen") {
  Menu menu = shown_menu();
  CHECK(menu.feed("8") == kind(Kind::weblink));
  CHECK(menu.state() == State::waiting);
  CHECK(menu.take_output() == "8");
  menu.show_weblink("https://console.test/#abc\nvalid once, for 60 s", kStatus);
  CHECK(menu.take_output() == "\r\nhttps://console.test/#abc\r\nvalid once, for 60 s\r\n" + kFullScreen);
}

TEST_CASE("menu sysrq item asks for one key and sends it") {
  Menu menu = shown_menu();
  CHECK(menu.feed("6") == Request{});
  CHECK(menu.state() == State::sysrq_key);
  CHECK(menu.take_output() == "6" + kSysrqPrompt);

  char key = GENERATE('h', '0', '9', 'a', 'z', 'b');
  CHECK(menu.feed(std::string(1, key)) == sysrq(key));
  CHECK(menu.state() == State::waiting);
  CHECK(menu.take_output() == std::string(1, key));

  SECTION("success says where the answer shows") {
    menu.action_done(Action::sysrq, true, "web1: sysrq h sent", kStatus);
    CHECK(menu.take_output() ==
          "\r\nweb1: sysrq h sent\r\n(the guest answers on its console; see log)\r\n" + kFullScreen);
    CHECK(menu.state() == State::main);
  }
  SECTION("a refusal is printed as it is") {
    menu.action_done(Action::sysrq, false, "sysrq is not allowed for web1", kStatus);
    CHECK(menu.take_output() == "\r\nsysrq is not allowed for web1\r\n" + kFullScreen);
  }
}

TEST_CASE("menu sysrq prompt cancels on anything but [0-9a-z]") {
  std::string key =
      GENERATE(std::string("\r"), std::string("\n"), std::string("H"), std::string("!"), std::string(" "),
               std::string("\x03"), std::string("\x04"), std::string("\x1b[A"), std::string(1, '\0'),
               std::string("\x7f"), std::string("\xc3\xa9"));
  Menu menu = shown_menu();
  REQUIRE(menu.feed("6") == Request{});
  menu.take_output();
  CHECK(menu.feed(key) == kind(Kind::status));
  CHECK(menu.state() == State::waiting);
  CHECK(contains(menu.take_output(), "\r\ncancelled\r\n"));
  CHECK(menu.feed("h") == Request{});  // the prompt is gone
  menu.show_status(kStatus);
  CHECK(menu.take_output() == kFullScreen);
}

TEST_CASE("menu a SysRq key typed ahead of its prompt is dropped") {
  Menu menu = shown_menu();
  CHECK(menu.feed("6b") == Request{});
  CHECK(menu.state() == State::sysrq_key);
  CHECK(menu.take_output() == "6" + kSysrqPrompt);
  CHECK(menu.feed("hb") == sysrq('h'));  // and only the first key counts
  CHECK(menu.take_output() == "h");
}

TEST_CASE("menu log item shows the log, then the main screen") {
  Menu menu = shown_menu();
  CHECK(menu.feed("7") == kind(Kind::log));
  CHECK(menu.state() == State::waiting);
  CHECK(menu.take_output() == "7");
  CHECK(menu.feed("1") == Request{});  // waiting for the log

  SECTION("text is normalised and filtered") {
    menu.show_log("boot\r\nline\ttwo\n\x1b[31mred\x1b[0m\r\r\nbell\x07\r\n", kStatus);
    CHECK(menu.take_output() == "\r\nboot\r\nline\ttwo\r\nred\r\nbell?\r\n" + kFullScreen);
    CHECK(menu.state() == State::main);
  }
  SECTION("a last line without its end gets one") {
    menu.show_log("web1 login: ", kStatus);
    CHECK(menu.take_output() == "\r\nweb1 login: \r\n" + kFullScreen);
  }
  SECTION("an empty log says so") {
    menu.show_log("", kStatus);
    CHECK(menu.take_output() == "\r\n(the console log is empty)\r\n" + kFullScreen);
  }
  SECTION("the log item works again afterwards") {
    menu.show_log("x\n", kStatus);
    menu.take_output();
    CHECK(menu.feed("7") == kind(Kind::log));
  }
}

TEST_CASE("menu shows the viewers line under the status line") {
  Menu menu("web1", kAll);
  menu.set_viewers("viewers: alice, since 10:02:11 UTC; bob (read-only), since 10:05:40 UTC");
  CHECK(menu.take_output().empty());  // shown on the next render, not at once
  menu.show_status(kStatus);
  std::string with = menu.take_output();
  CHECK(with.rfind(std::string("\r\n") + std::string(kStatus) +
                       "\r\nviewers: alice, since 10:02:11 UTC; bob (read-only), since 10:05:40 UTC"
                       "\r\n\r\n  1) console",
                   0) == 0);

  SECTION("it stays until replaced") {
    CHECK(menu.feed("1") == kind(Kind::attach_console));
    menu.console_detached(kStatus);
    CHECK(contains(menu.take_output(), "\r\nviewers: alice, since"));
  }
  SECTION("empty removes it") {
    menu.set_viewers("");
    menu.show_status(kStatus);
    CHECK(menu.take_output() == kFullScreen);
  }
  SECTION("control bytes are filtered") {
    menu.set_viewers("viewers: \x1b[2Jeve\r\n");
    menu.show_status(kStatus);
    CHECK(contains(menu.take_output(), "\r\nviewers: ?[2Jeve??\r\n\r\n"));
  }
}

TEST_CASE("menu done is final for the new calls too") {
  Menu menu = shown_menu();
  REQUIRE(menu.feed("0") == kind(Kind::exit));
  menu.take_output();
  menu.show_log("text", kStatus);
  menu.set_viewers("viewers: x");
  menu.show_status(kStatus);
  CHECK(menu.take_output().empty());
  CHECK(menu.state() == State::done);
}
