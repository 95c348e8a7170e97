// One customer's SSH connection inside the session process: authentication, the one session
// channel and its requests (and, for a fleet's front, a few command channels beside it:
// exec_channel.h). What runs on the channel is a ChannelCore (the CustomerSession's
// menu, commands and console, or a front's NodeRelay); this class is its Terminal.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "config/config.h"
#include "gateway/session/broker_client.h"
#include "gateway/session/channel_core.h"
#include "gateway/session/customer_session.h"
#include "gateway/session/exec_channel.h"
#include "gateway/session/terminal.h"

namespace xcg::gateway {

class SshConnection final : public Terminal {
 public:
  struct Limits {
    // The defaults are the config's (config::Limits), which documents each.
    unsigned max_auth_tries = config::Limits{}.max_auth_tries;  // failed logins before we hang up
    unsigned max_key_offers = config::Limits{}.max_key_offers;  // refused unsigned key offers
    unsigned idle_timeout_s = config::Limits{}.idle_timeout_s;  // 0 = off; else silence this long ends it
  };

  // What runs on the channel of a customer who logged in.
  using MakeCore = std::function<std::unique_ptr<ChannelCore>(Terminal&, const Customer&)>;

  SshConnection(ssh_session session, ssh_event event, BrokerClient& broker, Limits limits,
                MakeCore make_core);
  ~SshConnection() override;
  SshConnection(const SshConnection&) = delete;
  SshConnection& operator=(const SshConnection&) = delete;

  // Installs the server callbacks; call before the key exchange.
  void install();
  // Runs the work the callbacks queued and flushes output. Call after every poll.
  void step(std::chrono::steady_clock::time_point now);
  bool authenticated() const { return customer_.has_value(); }
  bool done() const { return done_ || (core_ && core_->over()); }
  // Waits for the client to take the last output, then says goodbye.
  void close();

  // Terminal: the session channel.
  Result<size_t> write(Stream stream, std::string_view bytes) override;
  void end(int exit_status, std::string_view reason) override;

 private:
  void install_server_callbacks();
  void set_auth_callbacks();
  void refuse_other_auth_methods();
  void install_channel_callbacks();

  // libssh callbacks (static trampolines in the .cc call these).
  int on_auth_pubkey(const char* user, ssh_key key, char signature_state);
  int deny_attempt();
  int refuse_offer();
  ssh_channel on_channel_open();
  ssh_channel open_command_channel();
  void step_command_channels(std::chrono::steady_clock::time_point now);
  int on_pty_request(const char* term, int cols, int rows);
  int on_window_change(int cols, int rows);
  int on_shell();
  int on_exec(const char* command);
  int on_data(const void* data, uint32_t len);
  static int on_console_readable(socket_t fd, int revents, void* userdata);
  static int on_broker_readable(socket_t fd, int revents, void* userdata);

  // Makes the event loop watch the console socket the CustomerSession wants read, if any.
  void watch_console();
  void unwatch_console();

  ssh_session session_;
  ssh_event event_;
  BrokerClient& broker_;
  Limits limits_;
  MakeCore make_core_;
  ssh_server_callbacks_struct server_cb_{};
  ssh_channel_callbacks_struct channel_cb_{};
  ssh_channel channel_ = nullptr;

  int auth_failures_ = 0;
  int refused_offers_ = 0;
  bool first_none_ = true;
  std::optional<Customer> customer_;  // set once a signed key was authorized
  bool have_pty_ = false;
  bool closed_by_client_ = false;  // the client closed the channel
  bool done_ = false;

  std::unique_ptr<ChannelCore> core_;  // what runs on the channel, from its opening on
  bool via_front_ = false;             // a fleet's front logged in for a customer
  std::vector<std::unique_ptr<ExecChannel>> command_channels_;  // a front's, beside the first
  int watched_console_ = -1;
};

}  // namespace xcg::gateway
