// One non-blocking libssh client connection that runs one exec command: connect, public-key
// authentication, a session channel, exec, then its output. The owner polls fd() for
// poll_events() and calls step() when it is ready (and now and then regardless), so that one
// thread can drive hundreds of these.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace xcg::load {

class SshClient {
 public:
  enum class Phase { connecting, authenticating, opening, requesting, running, closing, done, failed };

  struct Options {
    int port = 22;
    std::string user;  // the domain
    ssh_key key = nullptr;  // not owned; must outlive the client
    std::string command;
  };

  // `on_output` gets every chunk of the command's stdout as it arrives.
  SshClient(Options options, std::function<void(std::string_view)> on_output);
  ~SshClient();
  SshClient(const SshClient&) = delete;
  SshClient& operator=(const SshClient&) = delete;

  // Does everything that can be done now without blocking.
  void step();
  // Sends bytes on the channel (while running); false if they could not be sent.
  bool send(std::string_view bytes);
  // Ends the connection at once (a viewer leaving); the phase becomes done.
  void disconnect();

  int fd() const;
  short poll_events() const;
  Phase phase() const { return phase_; }
  bool finished() const { return phase_ == Phase::done || phase_ == Phase::failed; }
  // Once failed: which step failed and libssh's reason.
  const std::string& error() const { return error_; }
  std::optional<int> exit_status() const { return exit_status_; }
  const std::string& stderr_text() const { return stderr_; }

 private:
  bool read_output();
  void fail(std::string_view step);

  Options options_;
  std::function<void(std::string_view)> on_output_;
  ssh_session session_ = nullptr;
  ssh_channel channel_ = nullptr;
  ssh_channel_callbacks_struct callbacks_{};
  Phase phase_ = Phase::connecting;
  std::string error_;
  std::string stderr_;
  std::optional<int> exit_status_;
};

std::string_view phase_name(SshClient::Phase phase);

}  // namespace xcg::load
