// One non-blocking libssh client connection: TCP connect, key exchange, public-key
// authentication, one session channel, then an exec command or a shell (no pty, as `ssh -T`),
// and its output until the channel ends. The owner polls fd() for poll_events() and calls step()
// when it is ready, so that one thread can drive hundreds of these.
//
// It offers only what an OpenSSH client negotiates first (curve25519-sha256, ssh-ed25519 host
// and user keys, chacha20-poly1305, no compression) and sets TCP_NODELAY as OpenSSH does, so
// that it meets a gateway and sshd alike; the key must be ed25519. It reads no ~/.ssh/config
// and checks no host key: the servers it tests are new each run.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "tests/load/ssh_client/handles.h"

namespace xcg::ssh_client {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b);

struct Options {
  std::string host = "127.0.0.1";
  int port = 22;
  std::string user;
  ssh_key key = nullptr;  // borrowed; must outlive the client
  std::string command;    // empty: a shell
};

// When each phase ended; the default time_point until it has.
struct Timings {
  Clock::time_point start;       // the client was made, before the TCP connect
  Clock::time_point connected;   // TCP up and key exchange done
  Clock::time_point authed;      // public key accepted
  Clock::time_point started;     // exec or shell request accepted
  Clock::time_point first_byte;  // first byte of output
};

class Client {
 public:
  enum class Phase {
    connecting,
    handshaking,
    authenticating,
    opening,
    requesting,
    running,
    closing,
    done,
    failed
  };
  using OnOutput = std::function<void(std::string_view)>;

  // `on_output` gets every chunk of stdout as it arrives; it may call disconnect().
  Client(Options options, OnOutput on_output);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Does everything that can be done now without blocking.
  void step();
  // Sends bytes on the channel while running, then steps (a write reads the server's packets
  // too); false if they could not all be sent.
  bool send(std::string_view bytes);
  // Ends the connection at once (a viewer leaving); the phase becomes done.
  void disconnect();

  int fd() const;  // -1 before the first step and once finished
  short poll_events() const;
  Phase phase() const { return phase_; }
  std::string_view phase_name() const;
  bool finished() const { return phase_ == Phase::done || phase_ == Phase::failed; }
  // Once failed: which step failed and libssh's reason.
  const std::string& error() const { return error_; }
  std::optional<int> exit_status() const { return exit_status_; }
  const std::string& stderr_text() const { return stderr_; }
  const Timings& timings() const { return timings_; }

 private:
  bool configure();
  bool advance();
  bool step_connect();
  bool tcp_connected() const;
  bool step_auth();
  bool new_channel();
  bool step_open();
  bool step_request();
  bool step_running();
  bool step_closing();
  bool read_output();
  bool deliver_taken();
  void deliver(int is_stderr, std::string_view bytes);
  bool enter(Phase phase);
  bool fail(std::string_view step);
  bool fail_with(std::string error);

  Options options_;
  OnOutput on_output_;
  ssh_counter_struct socket_counter_{};  // bytes libssh read off the socket; outlives session_
  Session session_;
  Channel channel_;  // after session_: freed before it
  ssh_channel_callbacks_struct callbacks_{};
  Phase phase_ = Phase::connecting;
  std::string error_;
  std::string stderr_;
  // What libssh handed the data callback, by stream (stdout, stderr), not yet delivered: it is
  // delivered outside libssh's calls, where the owner may disconnect.
  std::string taken_[2];
  std::optional<int> exit_status_;
  Timings timings_;
};

}  // namespace xcg::ssh_client
