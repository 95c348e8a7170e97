// A front's session channel (docs/fleet.md, "Front to node"): once the customer asked for a
// shell or a command, it asks the broker for a connection to the node that runs the domain,
// logs in there for the customer (node_client.h) and relays the channel both ways: data
// bounded by each side's window and a cap, EOF, window changes, the exit status, the close.
// The node does everything else, so customers see no difference; only `weblink` is the front's
// own (its links are to the front's public_url). xcg-web runs one too, for a browser on a
// front: with no libssh event of its own, it watches the node's socket through
// console_to_watch(). A node that ends the channel because the domain migrated away
// (ipc::kExitMoved) is left for the domain's new node, the same channel asked for again.
#pragma once

#include <list>
#include <optional>
#include <string>

#include "gateway/session/broker_client.h"
#include "gateway/session/channel_core.h"
#include "gateway/session/customer_session.h"
#include "gateway/session/node_client.h"
#include "gateway/session/node_command.h"
#include "gateway/session/output_queue.h"
#include "gateway/session/relay_core.h"
#include "gateway/session/terminal.h"

namespace xcg::gateway {

class NodeRelay final : public RelayCore {
 public:
  struct Setup {
    ssh_key front_key = nullptr;       // borrowed: the session keeps it
    ssh_event event = nullptr;         // the transport's, which polls the node's session; or none
    std::chrono::seconds timeout{10};  // from the shell request to the node's channel
  };

  NodeRelay(Terminal& terminal, BrokerClient& broker, Customer customer, Setup setup);
  ~NodeRelay() override;
  NodeRelay(const NodeRelay&) = delete;
  NodeRelay& operator=(const NodeRelay&) = delete;

  void pty(const PtySize& size) override;
  void window_changed(const PtySize& size) override;
  bool start_shell() override;
  bool start_exec(std::string_view command) override;
  void input(std::string_view bytes, Clock::time_point now) override;
  void input_ended() override { input_ended_ = true; }
  void hung_up() override { hung_up_ = true; }
  std::optional<int> console_to_watch() const override;
  void step(Clock::time_point now) override;
  bool started() const override { return started_; }
  bool over() const override { return state_ == State::over; }

  // For a browser's page (xcg-web): relay_core.h.
  void when_connected(Connected connected) override;
  bool ask(std::string command, Answered answered) override;

 private:
  enum class State { idle, starting, relaying, finishing, over };
  void answer_weblink();
  void connect();
  Result<NodeChannel> open_channel();
  void check_revoked();
  void to_node();
  void from_node();
  void check_node_end();
  void follow_move();
  void say_moved(const std::string& from);
  void step_commands(Clock::time_point now);
  void flush();
  void finish(int exit_status, const std::string& line = {}, std::string reason = {});
  void close_node();
  void say(const std::string& line);

  Terminal& terminal_;
  BrokerClient& broker_;
  Customer customer_;
  Setup setup_;
  State state_ = State::idle;
  bool started_ = false;
  std::optional<PtySize> pty_;
  std::optional<std::string> command_;
  std::string input_;  // customer bytes the node's window has not taken yet
  bool input_ended_ = false;
  bool eof_sent_ = false;
  bool hung_up_ = false;
  OutputQueue output_;
  std::optional<NodeChannel> node_;
  std::string node_name_;   // the node relayed to, as the broker named it
  std::string moved_from_;  // the node the domain migrated away from, while reattaching
  Connected connected_;
  std::list<std::pair<NodeCommand, Answered>> commands_;  // under way, on node_'s connection
  int final_status_ = 0;
  std::string final_reason_;  // for a transport that shows it apart (a WebSocket's close)
};

}  // namespace xcg::gateway
