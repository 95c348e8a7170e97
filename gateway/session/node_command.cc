#include "gateway/session/node_command.h"

#include <algorithm>
#include <array>

#include "base/log.h"

namespace xcg::gateway {
namespace {

constexpr size_t kMaxAnswer = 64 * 1024;  // a log of 200 lines fits; beyond, the rest is dropped

std::string without_prefix(std::string text) {
  if (text.starts_with("xcg: ")) text.erase(0, 5);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

}  // namespace

NodeCommand::NodeCommand(ssh_session session, std::string command, Clock::time_point deadline)
    : session_(session),
      channel_(ssh_channel_new(session)),
      command_(std::move(command)),
      deadline_(deadline) {
  if (!channel_) fail("no channel to the node");
}

void NodeCommand::step(Clock::time_point now) {
  while (advance()) {
  }
  if (state_ != State::done && now >= deadline_) fail("the node did not answer in time");
}

// One move of the state machine; false when it waits for the node (or is done).
bool NodeCommand::advance() {
  int rc = SSH_OK;
  switch (state_) {
    case State::opening: rc = ssh_channel_open_session(channel_.get()); break;
    case State::asking: rc = ssh_channel_request_exec(channel_.get(), command_.c_str()); break;
    case State::reading: read(); return false;
    case State::done: return false;
  }
  if (rc == SSH_AGAIN) return false;
  if (rc != SSH_OK) {
    log::info("node command '{}': {}", command_, ssh_get_error(session_));
    fail("the node refused the request");
    return false;
  }
  state_ = state_ == State::opening ? State::asking : State::reading;
  return true;
}

// Everything the node has sent, then the end once both streams are drained.
void NodeCommand::read() {
  std::array<char, 16 * 1024> buffer;
  for (bool more = true; more;) {
    more = false;
    for (int is_stderr : {0, 1}) {
      int n = ssh_channel_read_nonblocking(channel_.get(), buffer.data(), buffer.size(), is_stderr);
      if (n == SSH_ERROR) return fail("the connection to the node was lost");
      if (n <= 0) continue;
      std::string& into = is_stderr ? err_ : out_;
      into.append(buffer.data(),
                  std::min(static_cast<size_t>(n), kMaxAnswer - std::min(kMaxAnswer, into.size())));
      more = true;
    }
  }
  ssh_channel channel = channel_.get();
  bool drained = ssh_channel_poll(channel, 0) <= 0 && ssh_channel_poll(channel, 1) <= 0;
  // The node sends the exit status, then EOF, then the close; libssh may hold the close back
  // while output is unread, so EOF with everything read is the end.
  if ((ssh_channel_is_eof(channel) || ssh_channel_is_closed(channel)) && drained) finish();
}

void NodeCommand::finish() {
  int status = ssh_channel_get_exit_status(channel_.get());  // does not wait: it came before the EOF
  answer_ = status == 0 ? NodeAnswer{true, without_prefix(out_)}
                        : NodeAnswer{false, without_prefix(err_.empty() ? out_ : err_)};
  if (status < 0) answer_ = NodeAnswer{false, "the node gave no answer"};
  channel_.reset();
  state_ = State::done;
}

void NodeCommand::fail(std::string why) {
  answer_ = NodeAnswer{false, std::move(why)};
  channel_.reset();  // libssh closes it with the node
  state_ = State::done;
}

}  // namespace xcg::gateway
