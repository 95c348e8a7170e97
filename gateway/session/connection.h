// One customer's SSH connection inside the session process: authentication, the one session
// channel, and what runs on it (menu, exec command, or console).
#pragma once

#include <chrono>
#include <deque>
#include <optional>
#include <string>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "base/unique_fd.h"
#include "config/config.h"
#include "gateway/session/broker_client.h"
#include "menu/menu.h"

namespace xcg::gateway {

class Connection {
 public:
  struct Limits {
    // The defaults are the config's (config::Limits), which documents each.
    unsigned max_auth_tries = config::Limits{}.max_auth_tries;  // failed logins before we hang up
    unsigned max_key_offers = config::Limits{}.max_key_offers;  // refused unsigned key offers
    unsigned idle_timeout_s = config::Limits{}.idle_timeout_s;  // 0 = off; else silence this long ends it
  };

  Connection(ssh_session session, ssh_event event, BrokerClient& broker, Limits limits);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Installs the server callbacks; call before the key exchange.
  void install();
  // Runs the work the callbacks queued and flushes output. Call after every poll.
  void step(std::chrono::steady_clock::time_point now);
  bool authenticated() const { return authenticated_; }
  bool done() const { return done_; }
  // Waits for the client to take the last output, then says goodbye.
  void close();

 private:
  enum class Mode { idle, menu, console, finishing };
  enum class Start { none, shell, exec };

  // libssh callbacks (static trampolines in the .cc call these).
  int on_auth_pubkey(const char* user, ssh_key key, char signature_state);
  int deny_attempt();
  int refuse_offer();
  ssh_channel on_channel_open();
  int on_pty_request(int cols, int rows);
  int on_shell();
  int on_exec(const char* command);
  int on_data(const void* data, uint32_t len);
  void on_channel_close();
  void on_channel_eof();

  void check_idle(std::chrono::steady_clock::time_point now);
  void start_shell();
  void run_exec(const std::string& command);
  template <class Answer>
  void finish_with(const Result<Answer>& answer);
  void exec_log(unsigned lines);
  void exec_who();
  void handle_menu_request(menu::Request r);
  void attach_console(bool from_menu);
  void detach_console();
  void leave_console();
  void pump_console_input(std::string_view bytes);
  static int on_console_readable(socket_t fd, int revents, void* self);
  static int on_broker_readable(socket_t fd, int revents, void* self);
  void check_revoked();
  void read_console();
  // The status line for a fresh main screen; also refreshes the menu's viewers line.
  std::string screen_status();

  void out(std::string_view bytes);
  void err(std::string_view bytes);
  void flush();
  void finish(int exit_status);
  void send_menu_output();

  ssh_session session_;
  ssh_event event_;
  BrokerClient& broker_;
  Limits limits_;
  std::chrono::steady_clock::time_point last_input_ = std::chrono::steady_clock::now();
  ssh_server_callbacks_struct server_cb_{};
  ssh_channel_callbacks_struct channel_cb_{};
  ssh_channel channel_ = nullptr;

  bool authenticated_ = false;
  int auth_failures_ = 0;
  int refused_offers_ = 0;
  bool first_none_ = true;
  std::string domain_;
  bool console_on_login_ = false;
  std::vector<config::Action> actions_;
  bool readonly_ = false;  // the key may watch the console only: no input, no actions

  bool have_pty_ = false;
  Start pending_start_ = Start::none;
  std::string pending_command_;
  bool started_ = false;
  Mode mode_ = Mode::idle;
  bool exec_console_ = false;  // the console was asked for by exec: detaching ends the session
  std::optional<menu::Menu> menu_;
  std::string input_;          // customer bytes not yet handled

  UniqueFd console_;
  bool console_watched_ = false;
  std::string console_out_;    // customer input the hub has not taken yet

  struct Chunk {
    bool is_stderr;
    std::string bytes;
  };
  std::deque<Chunk> output_;
  size_t output_bytes_ = 0;
  std::optional<int> exit_status_;
  bool client_eof_ = false;        // the client will send no more input
  bool closed_by_client_ = false;  // the client closed the channel
  bool done_ = false;
};

}  // namespace xcg::gateway
