#include "gateway/web/web_commands.h"

#include <catch2/catch.hpp>

using namespace xcg::gateway::web;
using xcg::config::Action;
using Kind = WebCommand::Kind;

TEST_CASE("web commands: the forms the page sends", "[web]") {
  CHECK(*parse_web_command("status") == WebCommand{Kind::status});
  CHECK(*parse_web_command("who") == WebCommand{Kind::who});
  CHECK(*parse_web_command("nmi") == WebCommand{Kind::nmi});
  CHECK(*parse_web_command("log 50") == WebCommand{Kind::log, Action::start, 50, 0});
  CHECK(*parse_web_command("log 200") == WebCommand{Kind::log, Action::start, 200, 0});
  CHECK(*parse_web_command("sysrq s") == WebCommand{Kind::sysrq, Action::start, 0, 's'});
  CHECK(*parse_web_command("action start") == WebCommand{Kind::action, Action::start, 0, 0});
  CHECK(*parse_web_command("action shutdown") == WebCommand{Kind::action, Action::shutdown, 0, 0});
  CHECK(*parse_web_command("action reboot") == WebCommand{Kind::action, Action::reboot, 0, 0});
  CHECK(*parse_web_command("action destroy") == WebCommand{Kind::action, Action::destroy, 0, 0});
}

TEST_CASE("web commands: anything else is refused", "[web]") {
  for (const char* bad : {"",
                          "Status",
                          "status ",
                          " status",
                          "status now",
                          "log",
                          "log 0",
                          "log 201",
                          "log -1",
                          "log 05",
                          "log 1x",
                          "log  5",
                          "sysrq",
                          "sysrq S",
                          "sysrq ss",
                          "sysrq !",
                          "action",
                          "action console",
                          "action sysrq",
                          "action start now",
                          "action  start",
                          "nmi 1",
                          "console",
                          "help"}) {
    INFO(bad);
    auto r = parse_web_command(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == xcg::Errc::invalid_input);
  }
  CHECK_FALSE(parse_web_command(std::string(2000, 'a')));
  CHECK_FALSE(parse_web_command(std::string_view("status\0", 7)));
}

TEST_CASE("the hello frame names the domain, the mode and the actions", "[web]") {
  xcg::gateway::Customer rw{"web1", true, {Action::console, Action::start, Action::reboot}, false};
  CHECK(hello_frame(rw) == "hello web1 w console start reboot");
  xcg::gateway::Customer ro{"web1", true, {Action::console, Action::start}, true};
  CHECK(hello_frame(ro) == "hello web1 r");
}

TEST_CASE("actions are refused here for a read-only or narrower link, without asking the broker", "[web]") {
  // fd -1: any broker call would fail, and its answer would not be these sentences.
  xcg::gateway::BrokerClient broker(-1);
  xcg::gateway::Customer ro{"web1", true, {Action::console, Action::start, Action::sysrq}, true};
  CHECK(answer_web_command(*parse_web_command("action start"), ro, broker) ==
        "result this session is read-only");
  CHECK(answer_web_command(*parse_web_command("nmi"), ro, broker) == "result this session is read-only");
  xcg::gateway::Customer rw{"web1", true, {Action::console, Action::start}, false};
  CHECK(answer_web_command(*parse_web_command("action destroy"), rw, broker) ==
        "result not allowed for this link");
  CHECK(answer_web_command(*parse_web_command("sysrq b"), rw, broker) == "result not allowed for this link");
  CHECK(answer_web_command(*parse_web_command("action start"), rw, broker).starts_with("result "));
}

TEST_CASE("through a front, each command is the node's exec command", "[web]") {
  CHECK(node_command(WebCommand{Kind::status}) == "status");
  CHECK(node_command(WebCommand{Kind::who}) == "who");
  CHECK(node_command(*parse_web_command("log 50")) == "log -n 50");
  CHECK(node_command(*parse_web_command("action reboot")) == "reboot");
  CHECK(node_command(*parse_web_command("sysrq b")) == "sysrq b");
  CHECK(node_command(WebCommand{Kind::nmi}) == "nmi");
}

TEST_CASE("through a front, the node's answers become the frames a single host sends", "[web]") {
  using xcg::gateway::NodeAnswer;
  CHECK(node_answer_frame(WebCommand{Kind::status}, NodeAnswer{true, "web1: running"}) ==
        "status web1: running");
  CHECK(node_answer_frame(WebCommand{Kind::who}, NodeAnswer{true, "alice (ssh)\nbrowser (web)"}) ==
        "who alice (ssh)\nbrowser (web)");
  CHECK(node_answer_frame(WebCommand{Kind::who}, NodeAnswer{true, ""}) == "who");
  CHECK(node_answer_frame(*parse_web_command("log 2"), NodeAnswer{true, "one\ntwo\x01"}) == "log one\ntwo?");
  CHECK(node_answer_frame(*parse_web_command("action reboot"), NodeAnswer{false, "reboot is not allowed"}) ==
        "result reboot is not allowed");
  CHECK(unanswered_frame(WebCommand{Kind::status}, "busy") == "status busy");
  CHECK(unanswered_frame(WebCommand{Kind::nmi}, "busy") == "result busy");
}

TEST_CASE("through a front, the page offers the node's actions that the link allows", "[web]") {
  std::vector<Action> every{Action::console, Action::start,   Action::shutdown,
                            Action::reboot,  Action::destroy, Action::sysrq};
  CHECK(offered_by_node("console start reboot", every) ==
        std::vector<Action>{Action::console, Action::start, Action::reboot});
  CHECK(offered_by_node("start bogus destroy", {Action::console, Action::start}) ==
        std::vector<Action>{Action::console, Action::start});
  CHECK(offered_by_node("", every) == std::vector<Action>{Action::console});
}
