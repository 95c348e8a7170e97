// One benchmark SSH connection: the shared non-blocking client (tests/load/ssh_client) on an
// EventLoop, so that one thread carries hundreds of them and neither server waits on the client.
//
// A connection logs in with its key, opens a session channel, asks for a shell (no pty, as
// `ssh -T`), and then "attaches": it types Ctrl-C and a unique token and waits for the guest's
// echo of that token. The echo proves the whole console path works (client → server → console
// client → guest → back), which is the moment a customer can use the console, on both servers.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/event_loop.h"
#include "tests/load/ssh_client/client.h"

namespace xcg::bench {

using ssh_client::Clock;
using ssh_client::ms_between;

struct Target {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string user;       // the domain for xcg, the shared Unix user for the baseline
  std::string domain;     // the guest this key reaches
  ssh_key key = nullptr;  // borrowed; the private key
};

class Conn {
 public:
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

  bool attached() const { return attached_ && !ended_; }
  bool alive() const { return !ended_; }
  // Where the login is: "tcp connect" ... "waiting for the console", "attached", "ended".
  std::string_view stage() const;
  const std::string& error() const { return error_; }
  // Each phase of the login; the default time_point for those not reached.
  const ssh_client::Timings& times() const;
  Clock::time_point attached_at() const { return attached_at_; }

 private:
  void advance();
  void settle();
  void watch();
  void unwatch();
  void take(std::string_view chunk);
  void end(std::string why);

  EventLoop& loop_;
  Target target_;
  std::string token_;
  Handlers handlers_;
  std::unique_ptr<ssh_client::Client> client_;
  int fd_ = -1;  // registered with loop_
  uint32_t events_ = 0;
  bool token_sent_ = false;
  bool attached_ = false;
  bool ended_ = false;
  std::string error_;
  std::string tail_;  // the unmatched end of the output while waiting for the token
  Clock::time_point attached_at_{};
};

}  // namespace xcg::bench
