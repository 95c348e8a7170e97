// The interactive lifecycle menu as a pure state machine: keystrokes in, text and requests out.
//
// The session process owns a Menu, feeds it the customer's bytes, writes take_output() to the
// channel and carries out the Request each call returns, reporting back with the *_done calls.
//
// A feed() stops at the first key that produces a request or opens the confirm prompt; the
// rest of that input is dropped. So a pasted "5y" shows the destroy prompt and nothing else:
// a confirmation only counts if it arrives after the question did.
#pragma once

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
  };
  Kind kind = Kind::none;
  config::Action action = config::Action::console;
  bool operator==(const Request&) const = default;
};

class Menu {
 public:
  // `allowed`: the domain's actions; items not in it are neither shown nor selectable.
  Menu(std::string domain, std::vector<config::Action> allowed);

  // Renders the main screen with this status line (e.g. "web1: running, domid 3, ...").
  void show_status(std::string_view status_line);
  // Handles customer keystrokes while the menu (not the console) has the terminal.
  Request feed(std::string_view input);
  void action_done(config::Action action, bool ok, std::string_view message,
                   std::string_view status_line);
  void attach_failed(std::string_view message, std::string_view status_line);
  void console_detached(std::string_view status_line);

  // Bytes to send to the customer since the last call (CRLF line endings).
  std::string take_output();

  enum class State { main, confirm, waiting, console, done };
  State state() const { return state_; }

 private:
  // Where we are inside a terminal escape sequence (arrow keys, F-keys, ...), which may
  // arrive split over several feeds.
  enum class Escape { none, esc, csi, ss3 };

  void render_main(std::string_view status_line);
  Request main_key(char key, bool& rang);
  Request confirm_key(char key);
  bool skip_escape(char key);
  Request select(config::Action action);
  Request request(Request::Kind kind, State next);
  void echo(char key);

  std::string domain_;
  std::vector<config::Action> items_;  // shown items, numbered 1..n; exit is 0
  State state_ = State::waiting;
  Escape escape_ = Escape::none;
  config::Action pending_ = config::Action::console;
  std::string out_;
};

}  // namespace xcg::menu
