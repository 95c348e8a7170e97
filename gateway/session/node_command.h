// On a fleet's front, one exec command on a further channel of a relay's connection to the node
// (the node's side: exec_channel.h), for a browser page's buttons, status line, who and log. It
// never waits: each step() takes it as far as the node has answered, so the console relayed on
// the same connection keeps flowing.
#pragma once

#include <chrono>
#include <string>

#include <libssh/libssh.h>

#include "gateway/session/relay_core.h"
#include "gateway/ssh_handles.h"

namespace xcg::gateway {

class NodeCommand {
 public:
  using Clock = std::chrono::steady_clock;

  // `session`: the relay's, connected and non-blocking; it must outlive this.
  NodeCommand(ssh_session session, std::string command, Clock::time_point deadline);

  void step(Clock::time_point now);
  bool done() const { return state_ == State::done; }
  const NodeAnswer& answer() const { return answer_; }

 private:
  enum class State { opening, asking, reading, done };
  bool advance();
  void read();
  void fail(std::string why);
  void finish();

  ssh_session session_;
  SshChannel channel_;
  std::string command_;
  Clock::time_point deadline_;
  State state_ = State::opening;
  std::string out_;
  std::string err_;
  NodeAnswer answer_;
};

}  // namespace xcg::gateway
