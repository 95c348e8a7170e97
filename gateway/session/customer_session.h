// What a session does once the customer is in, whatever carries it (terminal.h): the menu,
// the exec commands, the console, and the rules around them (read-only keys, revocation, the
// idle timeout). It is driven by events; the transport calls step() after each wake-up.
//
// The transport owns the event loop: it watches console_to_watch() and the broker's socket,
// where it calls BrokerClient::take_unsolicited(); a revocation found there ends the session
// at the next step. The broker calls block for milliseconds (broker_client.h).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "gateway/session/broker_client.h"
#include "gateway/session/channel_core.h"
#include "gateway/session/console_link.h"
#include "gateway/session/output_queue.h"
#include "gateway/session/terminal.h"
#include "menu/menu.h"

namespace xcg::gateway {

// Who logged in, as the broker authorized them.
struct Customer {
  std::string domain;
  bool console_on_login = false;
  std::vector<config::Action> actions;
  bool readonly = false;    // the key may watch the console only: no input, no actions
  std::string fingerprint;  // of the key that logged in (a front names it to the node)
};

class CustomerSession final : public ChannelCore {
 public:
  // idle_timeout_s: 0 = off; else this long without input ends the session.
  CustomerSession(Terminal& terminal, BrokerClient& broker, Customer customer, unsigned idle_timeout_s);
  ~CustomerSession() override;
  CustomerSession(const CustomerSession&) = delete;
  CustomerSession& operator=(const CustomerSession&) = delete;

  // Events from the customer's end. They only record what happened and step() acts on it,
  // so a transport may call them from inside its library's callbacks.
  // False if the session was started already: one shell or exec command per session.
  bool start_shell() override;
  bool start_exec(std::string_view command) override;
  void input(std::string_view bytes, Clock::time_point now) override;
  void input_ended() override;
  void hung_up() override;

  // The console socket (console_to_watch()) is readable.
  void console_readable() override;
  // Acts on what happened since the last step, checks the idle time and revocation, and
  // writes output; ends the terminal once everything was said.
  void step(Clock::time_point now) override;

  // The console socket, while the session wants to read it: attached, and the customer keeps
  // up with the output.
  std::optional<int> console_to_watch() const override;
  // Consoles attached so far: tells a new console socket from an earlier one that had the same
  // number, for a transport that keeps the socket registered between steps (xcg-web's epoll).
  unsigned console_attachments() const override { return console_attachments_; }
  bool started() const override { return started_; }
  // Nothing more to do: the terminal was ended, or the customer is gone.
  bool over() const override { return mode_ == Mode::over; }

 private:
  enum class Mode { idle, menu, console, finishing, over };
  bool ending() const { return mode_ == Mode::finishing || mode_ == Mode::over; }
  enum class Start { none, shell, exec };

  void start_pending();
  void handle_input();
  void check_idle(Clock::time_point now);
  void check_revoked();
  void check_narrowed();
  void start_menu();
  void handle_menu_request(menu::Request r);
  void run_exec(const std::string& command);
  template <class Answer>
  void finish_with(const Result<Answer>& answer);
  void exec_log(unsigned lines);
  void exec_who();
  void attach_console(bool from_menu);
  void detach_console();
  void leave_console();
  void send_to_console(std::string_view bytes);
  // The status line for a fresh main screen; also refreshes the menu's viewers line.
  std::string screen_status();

  void out(std::string_view bytes) { output_.add(Stream::out, bytes); }
  void err(std::string_view bytes) { output_.add(Stream::err, bytes); }
  void send_menu_output();
  void flush();
  void finish(int exit_status, std::string reason = {});
  void end_when_flushed();

  Terminal& terminal_;
  BrokerClient& broker_;
  Customer customer_;
  unsigned idle_timeout_s_;
  Clock::time_point last_input_ = Clock::now();

  Mode mode_ = Mode::idle;
  bool started_ = false;
  Start pending_start_ = Start::none;
  std::string pending_command_;
  std::string input_;  // customer bytes not yet handled
  bool input_ended_ = false;
  bool hung_up_ = false;

  std::optional<menu::Menu> menu_;
  bool exec_console_ = false;  // the console was asked for by exec: detaching ends the session
  std::optional<ConsoleLink> console_;
  unsigned console_attachments_ = 0;
  bool console_paused_ = false;  // the customer is not keeping up: the console is not read

  OutputQueue output_;
  int exit_status_ = 0;
  std::string end_reason_;
};

}  // namespace xcg::gateway
