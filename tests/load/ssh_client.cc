#include "tests/load/ssh_client.h"

#include <poll.h>

#include <fmt/format.h>

namespace xcg::load {
namespace {

constexpr size_t kReadChunk = 64 * 1024;

}  // namespace

std::string_view phase_name(SshClient::Phase phase) {
  switch (phase) {
    case SshClient::Phase::connecting: return "connecting";
    case SshClient::Phase::authenticating: return "authenticating";
    case SshClient::Phase::opening: return "opening a channel";
    case SshClient::Phase::requesting: return "requesting exec";
    case SshClient::Phase::running: return "running";
    case SshClient::Phase::closing: return "closing";
    case SshClient::Phase::done: return "done";
    case SshClient::Phase::failed: return "failed";
  }
  return "?";
}

SshClient::SshClient(Options options, std::function<void(std::string_view)> on_output)
    : options_(std::move(options)), on_output_(std::move(on_output)) {
  session_ = ssh_new();
  if (!session_) {
    phase_ = Phase::failed;
    error_ = "ssh_new failed";
    return;
  }
  int no = 0;
  unsigned port = static_cast<unsigned>(options_.port);
  // A test client: no ~/.ssh/config, no known_hosts (the gateway's host key is new each run).
  if (ssh_options_set(session_, SSH_OPTIONS_HOST, "127.0.0.1") < 0 ||
      ssh_options_set(session_, SSH_OPTIONS_PORT, &port) < 0 ||
      ssh_options_set(session_, SSH_OPTIONS_USER, options_.user.c_str()) < 0 ||
      ssh_options_set(session_, SSH_OPTIONS_PROCESS_CONFIG, &no) < 0 ||
      ssh_options_set(session_, SSH_OPTIONS_KNOWNHOSTS, "/dev/null") < 0 ||
      ssh_options_set(session_, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") < 0 ||
      ssh_options_set(session_, SSH_OPTIONS_STRICTHOSTKEYCHECK, &no) < 0) {
    fail("setting options");
    return;
  }
  ssh_set_blocking(session_, 0);
}

SshClient::~SshClient() {
  if (channel_) ssh_channel_free(channel_);
  if (session_) {
    if (ssh_is_connected(session_)) ssh_disconnect(session_);
    ssh_free(session_);
  }
}

int SshClient::fd() const {
  if (!session_ || finished()) return -1;
  return ssh_get_fd(session_);
}

short SshClient::poll_events() const {
  if (!session_ || finished()) return 0;
  return static_cast<short>(POLLIN | ((ssh_get_poll_flags(session_) & SSH_WRITE_PENDING) ? POLLOUT : 0));
}

void SshClient::fail(std::string_view step) {
  error_ = fmt::format("{}: {}", step, session_ ? ssh_get_error(session_) : "no session");
  phase_ = Phase::failed;
}

void SshClient::step() {
  for (;;) {
    switch (phase_) {
      case Phase::connecting: {
        int rc = ssh_connect(session_);
        if (rc == SSH_AGAIN) return;
        if (rc != SSH_OK) return fail("connect");
        phase_ = Phase::authenticating;
        break;
      }
      case Phase::authenticating: {
        int rc = ssh_userauth_publickey(session_, nullptr, options_.key);
        if (rc == SSH_AUTH_AGAIN) return;
        if (rc != SSH_AUTH_SUCCESS) return fail(fmt::format("public-key authentication (result {})", rc));
        channel_ = ssh_channel_new(session_);
        if (!channel_) return fail("ssh_channel_new");
        callbacks_.userdata = this;
        callbacks_.channel_exit_status_function = [](ssh_session, ssh_channel, int status, void* self) {
          static_cast<SshClient*>(self)->exit_status_ = status;
        };
        ssh_callbacks_init(&callbacks_);
        if (ssh_set_channel_callbacks(channel_, &callbacks_) != SSH_OK) return fail("ssh_set_channel_callbacks");
        phase_ = Phase::opening;
        break;
      }
      case Phase::opening: {
        int rc = ssh_channel_open_session(channel_);
        if (rc == SSH_AGAIN) return;
        if (rc != SSH_OK) return fail("opening a session channel");
        phase_ = Phase::requesting;
        break;
      }
      case Phase::requesting: {
        int rc = ssh_channel_request_exec(channel_, options_.command.c_str());
        if (rc == SSH_AGAIN) return;
        if (rc != SSH_OK) return fail(fmt::format("exec {}", options_.command));
        phase_ = Phase::running;
        break;
      }
      case Phase::running:
        if (!read_output()) return;
        phase_ = Phase::closing;  // end of output
        break;
      case Phase::closing:
        // The exit status comes before or with the channel close; wait for both.
        if (ssh_channel_poll(channel_, 0) == SSH_ERROR) return fail("waiting for the exit status");
        if (!exit_status_ && !ssh_channel_is_closed(channel_)) return;
        phase_ = Phase::done;
        return;
      case Phase::done:
      case Phase::failed:
        return;
    }
  }
}

// Reads what has arrived; true at the end of the output.
bool SshClient::read_output() {
  char buf[kReadChunk];
  for (int is_stderr : {0, 1}) {
    for (;;) {
      int n = ssh_channel_read_nonblocking(channel_, buf, sizeof buf, is_stderr);
      if (n > 0) {
        if (is_stderr)
          stderr_.append(buf, static_cast<size_t>(n));
        else
          on_output_(std::string_view(buf, static_cast<size_t>(n)));
        if (finished()) return false;  // the output handler disconnected
        continue;
      }
      if (n == 0 || n == SSH_EOF) break;
      fail("reading output");
      return false;
    }
  }
  if (ssh_channel_is_eof(channel_) || ssh_channel_is_closed(channel_)) return true;
  if (!ssh_is_connected(session_)) {
    fail("connection lost");
    return false;
  }
  return false;
}

bool SshClient::send(std::string_view bytes) {
  if (phase_ != Phase::running) return false;
  int n = ssh_channel_write(channel_, bytes.data(), static_cast<uint32_t>(bytes.size()));
  return n == static_cast<int>(bytes.size());
}

void SshClient::disconnect() {
  if (finished()) return;
  if (channel_) {
    ssh_channel_free(channel_);
    channel_ = nullptr;
  }
  ssh_disconnect(session_);
  phase_ = Phase::done;
}

}  // namespace xcg::load
