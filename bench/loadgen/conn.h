// One benchmark SSH connection: libssh in non-blocking mode, driven by an EventLoop, so that
// one thread carries hundreds of them and neither server waits on the client.
//
// A connection logs in with its key, opens a session channel, asks for a shell (no pty, as
// `ssh -T`), and then "attaches": it types Ctrl-C and a unique token and waits for the guest's
// echo of that token. The echo proves the whole console path works (client → server → console
// client → guest → back), which is the moment a customer can use the console, on both servers.
#pragma once

#include <libssh/libssh.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "base/event_loop.h"

namespace xcg::bench {

using Clock = std::chrono::steady_clock;

struct Target {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string user;    // the domain for xcg, the shared Unix user for the baseline
  std::string domain;  // the guest this key reaches
  ssh_key key = nullptr;  // borrowed; the private key
};

struct LoginTimes {
  Clock::time_point start;       // before the TCP connect
  Clock::time_point connected;   // TCP up and key exchange done
  Clock::time_point authed;      // public key accepted
  Clock::time_point shell;       // shell request accepted
  Clock::time_point first_byte;  // first channel byte (xcg: the replay; OpenSSH: the echo)
  Clock::time_point attached;    // the token's echo came back
};

double ms_between(Clock::time_point a, Clock::time_point b);

class Conn {
 public:
  enum class State { idle, connecting, handshaking, authenticating, opening, starting, attaching, attached, ended };
  struct Handlers {
    std::function<void(Conn&)> attached;
    std::function<void(Conn&, std::string_view)> data;  // console output after the token
    std::function<void(Conn&)> ended;                   // failure or server close; see error()
  };

  Conn(EventLoop& loop, Target target, std::string token, Handlers handlers);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  void start();
  // Types bytes into the console; false if the connection is not usable.
  bool send(std::string_view bytes);
  // Disconnects without calling any handler. Safe to call from a handler.
  void close();

  State state() const { return state_; }
  bool alive() const { return state_ != State::ended; }
  const std::string& error() const { return error_; }
  const LoginTimes& times() const { return times_; }
  const Target& target() const { return target_; }
  uint64_t bytes_received() const { return bytes_; }

 private:
  void on_event(uint32_t events);
  void advance();
  bool step();
  bool step_connect();
  void read_channel();
  void take(std::string_view chunk);
  void fail(std::string why);
  void release();

  EventLoop& loop_;
  Target target_;
  std::string token_;
  Handlers handlers_;
  ssh_session session_ = nullptr;
  ssh_channel channel_ = nullptr;
  int fd_ = -1;
  bool want_write_ = false;
  State state_ = State::idle;
  std::string error_;
  LoginTimes times_;
  std::string tail_;  // the unmatched end of the output while waiting for the token
  uint64_t bytes_ = 0;
  bool first_byte_seen_ = false;
};

}  // namespace xcg::bench
