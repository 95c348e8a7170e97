#include "menu/menu.h"

#include <utility>

#include "menu/commands.h"

namespace xcg::menu {
namespace {

constexpr char kCtrlC = 0x03;
constexpr char kCtrlD = 0x04;
constexpr char kCtrlL = 0x0c;
constexpr char kEsc = 0x1b;
constexpr std::string_view kClearScreen = "\x1b[H\x1b[2J";
constexpr size_t kNameWidth = 10;
constexpr std::string_view kViewOnlySummary = "watch the console, view only (Ctrl-] detaches)";
constexpr std::string_view kLogSummary = "show the recent console log";
constexpr std::string_view kWeblinkSummary = "browser console link (valid once)";

bool is_exit_key(char c) { return c == '0' || c == 'q' || c == kCtrlC || c == kCtrlD; }
bool is_refresh_key(char c) { return c == '\r' || c == '\n' || c == 'r' || c == kCtrlL; }

}  // namespace

Menu::Menu(const std::string& domain, const std::vector<config::Action>& allowed, bool readonly)
    : domain_(printable(domain)), readonly_(readonly) {
  for (config::Action a : config::kAllActions) {
    if (!config::allows(allowed, a)) continue;
    if (readonly && a != config::Action::console) continue;
    items_.push_back({a, config::action_name(a), readonly ? kViewOnlySummary : action_summary(a)});
  }
  items_.push_back({std::nullopt, "log", kLogSummary});
  items_.push_back({std::nullopt, "weblink", kWeblinkSummary, Request::Kind::weblink});
}

void Menu::show_status(std::string_view status_line) {
  if (state_ == State::done) return;
  render_main(status_line);
}

Request Menu::feed(std::string_view input) {
  bool rang = false;
  for (char c : input) {
    State before = state_;
    Request r;
    if (state_ == State::main) {
      r = main_key(c, rang);
    } else if (state_ == State::confirm) {
      r = confirm_key(c);
    } else if (state_ == State::sysrq_key) {
      r = sysrq_key(c);
    } else {
      break;  // waiting, console or done: the input is not ours
    }
    if (r.kind != Request::Kind::none || state_ != before) return r;
  }
  return {};
}

void Menu::action_done(config::Action action, bool ok, std::string_view message,
                       std::string_view status_line) {
  if (state_ == State::done) return;
  out_ += "\r\n" + printable(message) + "\r\n";
  // The guest answers a SysRq key on its console, which the menu does not show.
  if (action == config::Action::sysrq && ok) out_ += "(the guest answers on its console; see log)\r\n";
  render_main(status_line);
}

void Menu::attach_failed(std::string_view message, std::string_view status_line) {
  if (state_ == State::done) return;
  out_ += "\r\n" + printable(message) + "\r\n";
  render_main(status_line);
}

void Menu::console_detached(std::string_view status_line) {
  if (state_ == State::done) return;
  out_ += "\r\n[detached]\r\n";
  render_main(status_line);
}

void Menu::show_log(std::string_view text, std::string_view status_line) {
  if (state_ == State::done) return;
  std::string lines = printable_lines(text, "\r\n");
  if (lines.empty()) lines = "(the console log is empty)";
  out_ += "\r\n" + lines;
  if (!lines.ends_with("\r\n")) out_ += "\r\n";
  render_main(status_line);
}

void Menu::show_weblink(std::string_view text, std::string_view status_line) {
  if (state_ == State::done) return;
  out_ += "\r\n" + printable_lines(text, "\r\n") + "\r\n";
  render_main(status_line);
}

void Menu::set_viewers(std::string_view line) { viewers_ = printable(line); }

std::string Menu::take_output() { return std::exchange(out_, {}); }

void Menu::render_main(std::string_view status_line) {
  out_ += "\r\n" + printable(status_line) + "\r\n";
  if (!viewers_.empty()) out_ += viewers_ + "\r\n";
  out_ += "\r\n";
  for (size_t i = 0; i < items_.size(); ++i) {
    out_ += "  " + std::to_string(i + 1) + ") ";
    out_ += items_[i].name;
    out_.append(kNameWidth > items_[i].name.size() ? kNameWidth - items_[i].name.size() : 1, ' ');
    out_ += items_[i].summary;
    out_ += "\r\n";
  }
  out_ += "  0) exit\r\n\r\nChoice: ";
  state_ = State::main;
  escape_ = Escape::none;
}

Request Menu::main_key(char key, bool& rang) {
  if ((escape_ != Escape::none || key == kEsc) && skip_escape(key)) return {};
  if (is_exit_key(key)) {
    echo(key);
    out_ += "\r\nBye.\r\n";
    return request(Request::Kind::exit, State::done);
  }
  if (is_refresh_key(key)) {
    if (key == kCtrlL) out_ += kClearScreen;
    echo(key);
    return request(Request::Kind::status, State::waiting);
  }
  if (key >= '1' && key <= '9' && static_cast<size_t>(key - '0') <= items_.size()) {
    echo(key);
    return select(items_[key - '1']);
  }
  if (!rang) out_ += '\a';
  rang = true;
  return {};
}

// Swallows one byte of an escape sequence. CSI sequences ("\x1b[2~", "\x1b[1;5A") end at
// their final byte; SS3 ("\x1bOP") and Alt+key ("\x1bx") take exactly one more byte. As in a
// terminal, a control byte inside a sequence aborts it and counts as a key of its own, so a
// stray ESC cannot swallow Ctrl-C or Enter. Returns false for such a byte.
bool Menu::skip_escape(char key) {
  if (key == kEsc) {
    escape_ = Escape::esc;
    return true;
  }
  if (key >= 0 && key < 0x20) {
    escape_ = Escape::none;
    return false;
  }
  switch (escape_) {
    case Escape::esc: escape_ = key == '[' ? Escape::csi : key == 'O' ? Escape::ss3 : Escape::none; break;
    case Escape::csi:
      if (key < 0x20 || key > 0x3f) escape_ = Escape::none;  // the final byte, or garbage
      break;
    case Escape::none:
    case Escape::ss3: escape_ = Escape::none; break;
  }
  return true;
}

Request Menu::confirm_key(char key) {
  echo(key);
  if (key == 'y' || key == 'Y') {
    Request r = request(Request::Kind::action, State::waiting);
    r.action = pending_;
    return r;
  }
  return cancel();
}

Request Menu::sysrq_key(char key) {
  echo(key);
  if (!valid_sysrq_key(key)) return cancel();
  Request r = request(Request::Kind::sysrq, State::waiting);
  r.key = key;
  return r;
}

Request Menu::cancel() {
  out_ += "\r\ncancelled\r\n";
  return request(Request::Kind::status, State::waiting);
}

Request Menu::select(const Item& item) {
  if (item.action) return select(*item.action);
  return request(item.other, State::waiting);
}

Request Menu::select(config::Action action) {
  switch (action) {
    case config::Action::console:
      out_ += "\r\n[console of " + domain_ + (readonly_ ? ", view only" : "") +
              "; Ctrl-] returns to this menu]\r\n";
      return request(Request::Kind::attach_console, State::console);
    case config::Action::sysrq:
      out_ += "\r\nSysRq key for " + domain_ + " (h for help, Enter cancels): ";
      state_ = State::sysrq_key;
      return {};
    case config::Action::start: {
      Request r = request(Request::Kind::action, State::waiting);
      r.action = action;
      return r;
    }
    case config::Action::shutdown:
    case config::Action::reboot:
    case config::Action::destroy:
      pending_ = action;
      out_ += "\r\nReally ";
      out_ += config::action_name(action);
      out_ += " " + domain_ + "? [y/N] ";
      state_ = State::confirm;
      return {};
  }
  return {};
}

Request Menu::request(Request::Kind kind, State next) {
  state_ = next;
  escape_ = Escape::none;
  return Request{kind, config::Action::console, 0};
}

// Shows the key the customer pressed, the way a terminal in cooked mode would.
void Menu::echo(char key) {
  if (key == kCtrlC) {
    out_ += "^C";
  } else if (key == kCtrlD) {
    out_ += "^D";
  } else if (key >= 0x20 && key <= 0x7e) {
    out_ += key;
  }
}

}  // namespace xcg::menu
