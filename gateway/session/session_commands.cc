// CustomerSession's commands: the menu's requests and the exec commands, each answered by the
// broker (customer_session.h).
#include <fmt/format.h>

#include "base/text.h"
#include "gateway/session/customer_session.h"
#include "menu/commands.h"

namespace xcg::gateway {
namespace {

// A broker answer's sentence, or why there was none.
template <class Answer>
std::string text_of(const Result<Answer>& answer) {
  return answer ? answer->text : answer.error().message;
}

}  // namespace

std::string CustomerSession::screen_status() {
  if (menu_) {
    auto who = broker_.who();
    menu_->set_viewers(who ? menu::viewers_line(who->viewers) : "");
  }
  auto r = broker_.status();
  if (!r) return fmt::format("{}: status unavailable", customer_.domain);
  return r->text;
}

void CustomerSession::start_menu() {
  menu_.emplace(customer_.domain, customer_.actions, customer_.readonly);
  mode_ = Mode::menu;
  if (customer_.console_on_login && config::allows(customer_.actions, config::Action::console))
    return attach_console(true);
  menu_->show_status(screen_status());
  send_menu_output();
}

void CustomerSession::handle_menu_request(menu::Request r) {
  using K = menu::Request::Kind;
  switch (r.kind) {
    case K::none: return;
    case K::status: menu_->show_status(screen_status()); return;
    case K::exit:
      send_menu_output();
      finish(0);
      return;
    case K::attach_console:
      send_menu_output();  // the menu's echo and hint come before the console's bytes
      attach_console(true);
      return;
    case K::action: {
      auto ans = broker_.action(r.action);
      menu_->action_done(r.action, ans && ans->ok, text_of(ans), screen_status());
      return;
    }
    case K::sysrq: {
      auto ans = broker_.sysrq(r.key);
      menu_->action_done(config::Action::sysrq, ans && ans->ok, text_of(ans), screen_status());
      return;
    }
    case K::log: {
      auto ans = broker_.console_log(menu::Menu::kLogLines);  // asked before screen_status asks
      menu_->show_log(text_of(ans), screen_status());
      return;
    }
    case K::weblink: {
      auto ans = broker_.weblink();
      menu_->show_weblink(text_of(ans), screen_status());
      return;
    }
  }
}

void CustomerSession::run_exec(const std::string& command) {
  auto cmd = menu::parse_command(command);
  if (!cmd) {
    err("xcg: " + cmd.error().message + "\n");
    return finish(2);
  }
  switch (cmd->command) {
    case menu::Command::help:
      out(menu::help_text(customer_.domain, customer_.actions, customer_.readonly));
      return finish(0);
    case menu::Command::status: return finish_with(broker_.status());
    case menu::Command::console: exec_console_ = true; return attach_console(false);
    case menu::Command::log: return exec_log(cmd->lines);
    case menu::Command::who: return exec_who();
    case menu::Command::sysrq: return finish_with(broker_.sysrq(cmd->sysrq_key));
    case menu::Command::nmi: return finish_with(broker_.sysrq(0));
    case menu::Command::weblink: return finish_with(broker_.weblink());
    case menu::Command::start:
    case menu::Command::shutdown:
    case menu::Command::reboot:
    case menu::Command::destroy: return finish_with(broker_.action(*menu::required_action(cmd->command)));
  }
}

// Ends an exec command with the broker's sentence: stdout and 0 on success, stderr and 1 on a
// refusal or failure.
template <class Answer>
void CustomerSession::finish_with(const Result<Answer>& answer) {
  if (answer && answer->ok) {
    out(answer->text + "\n");
    return finish(0);
  }
  err("xcg: " + text_of(answer) + "\n");
  finish(1);
}

void CustomerSession::exec_log(unsigned lines) {
  auto r = broker_.console_log(lines);
  if (!r || !r->ok) {
    err("xcg: " + text_of(r) + "\n");
    return finish(1);
  }
  std::string text = menu::printable_lines(r->text, "\n");
  if (!text.empty() && text.back() != '\n') text += '\n';
  out(text);
  finish(0);
}

void CustomerSession::exec_who() {
  auto r = broker_.who();
  if (!r) {
    err("xcg: " + r.error().message + "\n");
    return finish(1);
  }
  for (const auto& viewer : r->viewers) out(printable(viewer) + "\n");
  finish(0);
}

}  // namespace xcg::gateway
