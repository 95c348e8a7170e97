// The interactive lifecycle menu as a pure state machine: keystrokes in, text and requests out.
//
// The session process owns a Menu, feeds it the customer's bytes, writes take_output() to the
// channel and carries out the Request each call returns, reporting back with the *_done calls.
//
// A feed() stops at the first key that produces a request or opens a prompt; the rest of that
// input is dropped. So a pasted "5y" shows the destroy prompt and nothing else: a confirmation
// (or a SysRq key) only counts if it arrives after the question did.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace xcg::menu {

struct Request {
  enum class Kind {
    none,            // nothing to do; just send take_output()
    status,          // fetch a fresh status line and call show_status()
    action,          // run `action` (start/shutdown/reboot/destroy), then call action_done()
    attach_console,  // attach; on failure call attach_failed(), on detach call console_detached()
    exit,            // the customer chose exit: close the session
    sysrq,           // send SysRq `key` to the guest, then call action_done(Action::sysrq, ...)
    log,             // fetch the recent console log and call show_log()
    weblink,         // ask for a browser console link and call show_weblink()
  };
  Kind kind = Kind::none;
  config::Action action = config::Action::console;
  char key = 0;  // sysrq: one of [0-9a-z]
  bool operator==(const Request&) const = default;
};

class Menu {
 public:
  // The number of console log lines the log item shows: about one screen.
  static constexpr unsigned kLogLines = 40;

  // `allowed`: the domain's actions; items not in it are neither shown nor selectable. A
  // `readonly` key gets only the console (to watch), the log and exit.
  Menu(const std::string& domain, const std::vector<config::Action>& allowed, bool readonly = false);

  // Renders the main screen with this status line (e.g. "web1: running, domid 3, ...").
  void show_status(std::string_view status_line);
  // Handles customer keystrokes while the menu (not the console) has the terminal.
  Request feed(std::string_view input);
  void action_done(config::Action action, bool ok, std::string_view message, std::string_view status_line);
  void attach_failed(std::string_view message, std::string_view status_line);
  void console_detached(std::string_view status_line);
  // Prints the console log (or the reason there is none), then the main screen.
  void show_log(std::string_view text, std::string_view status_line);
  // Prints a browser console link (or why there is none), then the main screen.
  void show_weblink(std::string_view text, std::string_view status_line);
  // The line shown under the status line from the next render on (see viewers_line() in
  // commands.h); empty: none.
  void set_viewers(std::string_view line);

  // Bytes to send to the customer since the last call (CRLF line endings).
  std::string take_output();

  enum class State { main, confirm, sysrq_key, waiting, console, done };
  State state() const { return state_; }

 private:
  // Where we are inside a terminal escape sequence (arrow keys, F-keys, ...), which may
  // arrive split over several feeds.
  enum class Escape { none, esc, csi, ss3 };

  // A numbered line of the main screen: an action, or a request of its own (the console log,
  // a browser console link).
  struct Item {
    std::optional<config::Action> action;
    std::string_view name;
    std::string_view summary;
    Request::Kind other = Request::Kind::log;  // without an action
  };

  void render_main(std::string_view status_line);
  Request main_key(char key, bool& rang);
  Request confirm_key(char key);
  Request sysrq_key(char key);
  bool skip_escape(char key);
  Request select(const Item& item);
  Request select(config::Action action);
  Request request(Request::Kind kind, State next);
  Request cancel();
  void echo(char key);

  std::string domain_;
  bool readonly_ = false;
  std::vector<Item> items_;  // shown items, numbered 1..n; exit is 0
  std::string viewers_;
  State state_ = State::waiting;
  Escape escape_ = Escape::none;
  config::Action pending_ = config::Action::console;
  std::string out_;
};

}  // namespace xcg::menu
