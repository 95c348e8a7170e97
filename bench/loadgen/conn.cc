#include "bench/loadgen/conn.h"

#include <sys/socket.h>

#include <stdexcept>

namespace xcg::bench {
namespace {

// The same algorithms on both servers, and the ones an OpenSSH client picks first with both.
constexpr const char* kKex = "curve25519-sha256";
constexpr const char* kHostKey = "ssh-ed25519";
constexpr const char* kCipher = "chacha20-poly1305@openssh.com";
constexpr size_t kReadChunk = 64 * 1024;

void set(ssh_session s, ssh_options_e option, const void* value) {
  if (ssh_options_set(s, option, value) != SSH_OK) throw std::runtime_error(ssh_get_error(s));
}

}  // namespace

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

Conn::Conn(EventLoop& loop, Target target, std::string token, Handlers handlers)
    : loop_(loop), target_(std::move(target)), token_(std::move(token)), handlers_(std::move(handlers)) {}

Conn::~Conn() { close(); }

void Conn::start() {
  times_.start = Clock::now();
  session_ = ssh_new();
  if (session_ == nullptr) return fail("ssh_new failed");
  bool no = false;
  int yes = 1;  // TCP_NODELAY, as the OpenSSH client sets it
  int port = target_.port;
  try {
    set(session_, SSH_OPTIONS_PROCESS_CONFIG, &no);  // no ~/.ssh/config
    set(session_, SSH_OPTIONS_HOST, target_.host.c_str());
    set(session_, SSH_OPTIONS_PORT, &port);
    set(session_, SSH_OPTIONS_USER, target_.user.c_str());
    set(session_, SSH_OPTIONS_KNOWNHOSTS, "/dev/null");
    set(session_, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
    set(session_, SSH_OPTIONS_KEY_EXCHANGE, kKex);
    set(session_, SSH_OPTIONS_HOSTKEYS, kHostKey);
    set(session_, SSH_OPTIONS_CIPHERS_C_S, kCipher);
    set(session_, SSH_OPTIONS_CIPHERS_S_C, kCipher);
    set(session_, SSH_OPTIONS_COMPRESSION, "no");
    set(session_, SSH_OPTIONS_PUBLICKEY_ACCEPTED_TYPES, "ssh-ed25519");
    set(session_, SSH_OPTIONS_NODELAY, &yes);
  } catch (const std::exception& e) {
    return fail(std::string("options: ") + e.what());
  }
  ssh_set_blocking(session_, 0);
  state_ = State::connecting;
  advance();
}

bool Conn::send(std::string_view bytes) {
  if (state_ != State::attached && state_ != State::attaching) return false;
  int n = ssh_channel_write(channel_, bytes.data(), static_cast<uint32_t>(bytes.size()));
  if (n == SSH_ERROR) {
    fail(std::string("write: ") + ssh_get_error(session_));
    return false;
  }
  return static_cast<size_t>(n) == bytes.size();
}

void Conn::close() {
  if (session_ == nullptr) {
    state_ = State::ended;
    return;
  }
  release();
  state_ = State::ended;
}

void Conn::release() {
  if (fd_ >= 0) loop_.remove(fd_);
  fd_ = -1;
  if (session_ != nullptr) {
    if (ssh_is_connected(session_)) ssh_disconnect(session_);  // frees the channel too
    ssh_free(session_);
  }
  session_ = nullptr;
  channel_ = nullptr;
}

void Conn::fail(std::string why) {
  if (state_ == State::ended) return;
  error_ = std::move(why);
  release();
  state_ = State::ended;
  if (handlers_.ended) handlers_.ended(*this);
}

void Conn::on_event(uint32_t) { advance(); }

// Runs the state machine until it waits for the network. Each handler may close us.
void Conn::advance() {
  for (int guard = 0; guard < 16 && state_ != State::ended; ++guard) {
    if (!step()) break;
  }
}

// One step; true if the state changed and the next step may proceed at once.
bool Conn::step() {
  switch (state_) {
    case State::idle:
    case State::ended:
      return false;
    case State::connecting:
    case State::handshaking:
      return step_connect();
    case State::authenticating: {
      int rc = ssh_userauth_publickey(session_, nullptr, target_.key);
      if (rc == SSH_AUTH_AGAIN) return false;
      if (rc != SSH_AUTH_SUCCESS) {
        fail(rc == SSH_AUTH_DENIED ? "auth: denied" : std::string("auth: ") + ssh_get_error(session_));
        return false;
      }
      times_.authed = Clock::now();
      channel_ = ssh_channel_new(session_);
      if (channel_ == nullptr) {
        fail("ssh_channel_new failed");
        return false;
      }
      state_ = State::opening;
      return true;
    }
    case State::opening: {
      int rc = ssh_channel_open_session(channel_);
      if (rc == SSH_AGAIN) return false;
      if (rc != SSH_OK) {
        fail(std::string("channel open: ") + ssh_get_error(session_));
        return false;
      }
      state_ = State::starting;
      return true;
    }
    case State::starting: {
      int rc = ssh_channel_request_shell(channel_);
      if (rc == SSH_AGAIN) return false;
      if (rc != SSH_OK) {
        fail(std::string("shell request: ") + ssh_get_error(session_));
        return false;
      }
      times_.shell = Clock::now();
      state_ = State::attaching;
      // Ctrl-C first: it clears whatever an earlier login left on the guest's line.
      if (!send("\x03" + token_)) return false;
      return true;
    }
    case State::attaching:
    case State::attached:
      read_channel();
      return false;
  }
  return false;
}

bool Conn::step_connect() {
  int rc = ssh_connect(session_);
  if (fd_ < 0) {
    fd_ = ssh_get_fd(session_);
    if (fd_ < 0) {
      fail(std::string("connect: ") + ssh_get_error(session_));
      return false;
    }
    // Write interest only until the TCP connect completes; after that the socket is always
    // writable and would spin the loop.
    want_write_ = true;
    loop_.add(fd_, EPOLLIN | EPOLLOUT, "connection", [this](uint32_t events) { on_event(events); });
  }
  if (rc == SSH_AGAIN) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    if (want_write_ && ::getpeername(fd_, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
      want_write_ = false;
      state_ = State::handshaking;
      loop_.modify(fd_, EPOLLIN);
    }
    return false;
  }
  if (rc != SSH_OK) {
    fail(std::string("connect: ") + ssh_get_error(session_));
    return false;
  }
  if (want_write_) loop_.modify(fd_, EPOLLIN);
  want_write_ = false;
  times_.connected = Clock::now();
  state_ = State::authenticating;
  return true;
}

void Conn::read_channel() {
  char buf[kReadChunk];
  while (state_ == State::attaching || state_ == State::attached) {
    int n = ssh_channel_read_nonblocking(channel_, buf, sizeof buf, 0);
    if (n > 0) {
      take(std::string_view(buf, static_cast<size_t>(n)));
      continue;
    }
    if (n == 0 && ssh_is_connected(session_)) return;
    fail(n == SSH_EOF || n == 0 ? "server closed the channel" : std::string("read: ") + ssh_get_error(session_));
    return;
  }
}

void Conn::take(std::string_view chunk) {
  bytes_ += chunk.size();
  if (!first_byte_seen_) {
    first_byte_seen_ = true;
    times_.first_byte = Clock::now();
  }
  if (state_ == State::attached) {
    if (handlers_.data) handlers_.data(*this, chunk);
    return;
  }
  tail_.append(chunk);
  size_t at = tail_.find(token_);
  if (at == std::string::npos) {
    if (tail_.size() > token_.size()) tail_.erase(0, tail_.size() - token_.size());
    return;
  }
  std::string rest = tail_.substr(at + token_.size());
  tail_.clear();
  times_.attached = Clock::now();
  state_ = State::attached;
  if (handlers_.attached) handlers_.attached(*this);
  if (state_ == State::attached && !rest.empty() && handlers_.data) handlers_.data(*this, rest);
}

}  // namespace xcg::bench
