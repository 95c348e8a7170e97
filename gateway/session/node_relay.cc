#include "gateway/session/node_relay.h"

#include <algorithm>
#include <array>
#include <utility>

#include "base/log.h"
#include "base/text.h"

namespace xcg::gateway {
namespace {

constexpr size_t kMaxPendingInput = 256 * 1024;   // beyond it a paste loses the excess, as in the menu
constexpr size_t kMaxPendingOutput = 256 * 1024;  // then the node's output waits in its window
constexpr int kExitLost = 255;                    // as ssh(1) when the connection is gone
constexpr char kLostLine[] = "\r\n[xcg: the connection to the node was lost]\r\n";

bool connection_lost(ssh_session session) {
  return !ssh_is_connected(session) || (ssh_get_status(session) & (SSH_CLOSED | SSH_CLOSED_ERROR));
}

}  // namespace

NodeRelay::NodeRelay(Terminal& terminal, BrokerClient& broker, Customer customer, Setup setup)
    : terminal_(terminal), broker_(broker), customer_(std::move(customer)), setup_(setup) {}

NodeRelay::~NodeRelay() { close_node(); }

void NodeRelay::pty(const PtySize& size) { pty_ = size; }

void NodeRelay::window_changed(const PtySize& size) {
  if (pty_) pty_->cols = size.cols, pty_->rows = size.rows;
  if (node_ && state_ == State::relaying)
    (void)ssh_channel_change_pty_size(node_->channel.get(), size.cols, size.rows);  // lost with the node
}

bool NodeRelay::start_shell() {
  if (started_) return false;
  started_ = true;
  state_ = State::starting;
  return true;
}

bool NodeRelay::start_exec(std::string_view command) {
  if (!start_shell()) return false;
  if (command == "weblink") {
    answer_weblink();
    return true;
  }
  command_ = std::string(command.substr(0, 4096));
  return true;
}

// A link to the front, for the front's browser console; the node would give one to its own.
void NodeRelay::answer_weblink() {
  auto answer = broker_.weblink();
  if (answer && answer->ok) {
    output_.add(Stream::out, answer->text + "\n");
    return finish(0);
  }
  finish(1, "xcg: " + (answer ? answer->text : answer.error().message) + "\n");
}

std::optional<int> NodeRelay::console_to_watch() const {
  if (setup_.event != nullptr || !node_ || state_ != State::relaying) return std::nullopt;
  return ssh_get_fd(node_->session.get());
}

void NodeRelay::input(std::string_view bytes, Clock::time_point) {
  size_t room = kMaxPendingInput - std::min(kMaxPendingInput, input_.size());
  input_.append(bytes.substr(0, room));
}

void NodeRelay::when_connected(Connected connected) { connected_ = std::move(connected); }

bool NodeRelay::ask(std::string command, Answered answered) {
  if (!node_ || state_ != State::relaying || commands_.size() >= kMaxNodeCommands) return false;
  commands_.emplace_back(NodeCommand(node_->session.get(), std::move(command), Clock::now() + setup_.timeout),
                         std::move(answered));
  return true;
}

void NodeRelay::step_commands(Clock::time_point now) {
  for (auto it = commands_.begin(); it != commands_.end();) {
    it->first.step(now);
    if (!it->first.done()) {
      ++it;
      continue;
    }
    auto answered = std::move(it->second);
    NodeAnswer answer = it->first.answer();
    it = commands_.erase(it);
    answered(answer);
  }
}

void NodeRelay::step(Clock::time_point now) {
  check_revoked();
  if (state_ == State::starting) connect();
  if (hung_up_ && state_ != State::over) {
    close_node();
    state_ = State::over;
    return;
  }
  if (state_ == State::relaying) {
    to_node();
    from_node();
    step_commands(now);
    check_node_end();
  }
  flush();
}

void NodeRelay::check_revoked() {
  if (!broker_.revoked() || state_ == State::finishing || state_ == State::over) return;
  finish(1, "\r\n[xcg: " + printable(*broker_.revoked()) + "]\r\n", *broker_.revoked());
}

// --- the node's channel ------------------------------------------------------------------------

void NodeRelay::connect() {
  bool first = moved_from_.empty();  // a reattach after a move greets no one again
  auto channel = open_channel();
  if (connected_ && first) connected_(channel ? channel->actions : std::nullopt);
  if (!channel) return finish(1, "xcg: " + channel.error().message + "\r\n");
  node_ = std::move(*channel);
  if (setup_.event != nullptr && ssh_event_add_session(setup_.event, node_->session.get()) != SSH_OK)
    return finish(1, "xcg: internal error\r\n");
  state_ = State::relaying;
  std::string from = std::exchange(moved_from_, {});
  if (!from.empty()) say_moved(from);
}

// On a terminal the line goes with the output, so that it shows where the new node's begins;
// without one, stdout is the command's. A domain restored where it left is back, not moved.
void NodeRelay::say_moved(const std::string& from) {
  std::string where = node_name_ == from ? " is back on " : " moved to ";
  output_.add(pty_ ? Stream::out : Stream::err,
              "\r\n[xcg: " + customer_.domain + where + node_name_ + "]\r\n");
}

// The customer reads the broker's reason, or which node failed; the log has the details.
Result<NodeChannel> NodeRelay::open_channel() {
  UniqueFd socket;
  auto answer = broker_.node_connect(socket, moved_from_);
  if (!answer) return tl::unexpected(answer.error());
  if (!answer->ok) return fail(Errc::unavailable, answer->text);
  node_name_ = answer->node;
  NodeLogin login{answer->node,
                  answer->host_key_fingerprint,
                  front_user(customer_.domain, customer_.fingerprint, customer_.readonly),
                  setup_.front_key,
                  pty_,
                  command_,
                  connected_ != nullptr};
  auto channel = open_node_channel(std::move(socket), login, Clock::now() + setup_.timeout);
  if (channel) return channel;
  log::info("node {}: {}", answer->node, channel.error().message);
  return fail(Errc::unavailable, answer->node + " unavailable");
}

void NodeRelay::to_node() {
  ssh_channel channel = node_->channel.get();
  size_t room = std::min<size_t>(ssh_channel_window_size(channel), input_.size());
  if (room > 0) {
    int n = ssh_channel_write(channel, input_.data(), static_cast<uint32_t>(room));
    if (n > 0) input_.erase(0, static_cast<size_t>(n));
  }
  if (input_ended_ && input_.empty() && !eof_sent_) eof_sent_ = ssh_channel_send_eof(channel) == SSH_OK;
}

void NodeRelay::from_node() {
  std::array<char, 16 * 1024> buffer;
  for (int is_stderr : {0, 1}) {
    while (output_.bytes() < kMaxPendingOutput) {
      int n = ssh_channel_read_nonblocking(node_->channel.get(), buffer.data(), buffer.size(), is_stderr);
      if (n <= 0) break;
      output_.add(is_stderr ? Stream::err : Stream::out,
                  std::string_view(buffer.data(), static_cast<size_t>(n)));
    }
  }
}

// The node's channel ends at its EOF once the output is drained and its exit status has come,
// without waiting for the close: after an EOF libssh's channel reads no longer read the socket,
// so a close that came in a later packet would wait for whatever else reads it, and xcg-web has
// no libssh event loop that would. Asking for the exit status reads on (non-blocking here). A
// channel closed with no exit status is one of a lost connection too: that one gets the line.
void NodeRelay::check_node_end() {
  ssh_channel channel = node_->channel.get();
  bool drained = ssh_channel_poll(channel, 0) <= 0 && ssh_channel_poll(channel, 1) <= 0;
  if (drained && (ssh_channel_is_eof(channel) || ssh_channel_is_closed(channel))) {
    int status = ssh_channel_get_exit_status(channel);
    if (status == ipc::kExitMoved) return follow_move();
    if (status >= 0) return finish(status);
    bool lost = connection_lost(node_->session.get());
    if (ssh_channel_is_closed(channel)) return finish(kExitLost, lost ? kLostLine : "");
  }
  if (connection_lost(node_->session.get())) finish(kExitLost, kLostLine);
}

// The node let the domain go to another node: ask the broker for that one.
void NodeRelay::follow_move() {
  for (auto& [command, answered] : std::exchange(commands_, {}))
    answered(NodeAnswer{false, customer_.domain + " moved to another node; try again"});
  close_node();
  log::info("node {}: {} migrated away; reattaching", node_name_, customer_.domain);
  moved_from_ = node_name_;
  eof_sent_ = false;
  state_ = State::starting;
  connect();  // now: nothing else may wake the session before its next tick
}

void NodeRelay::close_node() {
  if (!node_) return;
  commands_.clear();       // their channels too: unanswered, the session is ending
  node_->channel.reset();  // before the disconnect, which would free it under our handle
  if (setup_.event != nullptr) ssh_event_remove_session(setup_.event, node_->session.get());
  ssh_disconnect(node_->session.get());
  node_.reset();
}

// --- the customer's end ------------------------------------------------------------------------

void NodeRelay::say(const std::string& line) { output_.add(Stream::err, line); }

void NodeRelay::finish(int exit_status, const std::string& line, std::string reason) {
  close_node();
  say(line);
  final_status_ = exit_status;
  final_reason_ = std::move(reason);
  state_ = State::finishing;
}

void NodeRelay::flush() {
  if (state_ == State::over) return;
  if (!output_.flush(terminal_)) {
    close_node();
    state_ = State::over;  // the customer is gone
    return;
  }
  if (state_ != State::finishing || !output_.empty()) return;
  terminal_.end(final_status_, final_reason_);
  state_ = State::over;
}

}  // namespace xcg::gateway
