#include "tests/load/ssh_client/client.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include <fmt/format.h>

namespace xcg::ssh_client {
namespace {

constexpr const char* kKex = "curve25519-sha256";
constexpr const char* kEd25519 = "ssh-ed25519";
constexpr const char* kCipher = "chacha20-poly1305@openssh.com";
// Only the start of stderr is kept: it is for error messages.
constexpr size_t kStderrKept = 4096;

}  // namespace

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

Client::Client(Options options, OnOutput on_output)
    : options_(std::move(options)), on_output_(std::move(on_output)), session_(ssh_new()) {
  timings_.start = Clock::now();
  if (!session_) {
    fail_with("ssh_new failed");
    return;
  }
  ssh_set_counters(session_.get(), &socket_counter_, nullptr);
  if (configure()) ssh_set_blocking(session_.get(), 0);
}

bool Client::configure() {
  bool no_config = false;
  int no = 0;
  int yes = 1;
  unsigned port = static_cast<unsigned>(options_.port);
  const std::pair<ssh_options_e, const void*> settings[] = {
      {SSH_OPTIONS_PROCESS_CONFIG, &no_config},
      {SSH_OPTIONS_HOST, options_.host.c_str()},
      {SSH_OPTIONS_PORT, &port},
      {SSH_OPTIONS_USER, options_.user.c_str()},
      {SSH_OPTIONS_KNOWNHOSTS, "/dev/null"},
      {SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null"},
      {SSH_OPTIONS_STRICTHOSTKEYCHECK, &no},
      {SSH_OPTIONS_KEY_EXCHANGE, kKex},
      {SSH_OPTIONS_HOSTKEYS, kEd25519},
      {SSH_OPTIONS_CIPHERS_C_S, kCipher},
      {SSH_OPTIONS_CIPHERS_S_C, kCipher},
      {SSH_OPTIONS_COMPRESSION, "no"},
      {SSH_OPTIONS_PUBLICKEY_ACCEPTED_TYPES, kEd25519},
      {SSH_OPTIONS_NODELAY, &yes},
  };
  for (auto [option, value] : settings) {
    if (ssh_options_set(session_.get(), option, value) != SSH_OK) return fail("setting options");
  }
  return true;
}

std::string_view Client::phase_name() const {
  switch (phase_) {
    case Phase::connecting: return "tcp connect";
    case Phase::handshaking: return "key exchange";
    case Phase::authenticating: return "authentication";
    case Phase::opening: return "channel open";
    case Phase::requesting: return options_.command.empty() ? "shell request" : "exec request";
    case Phase::running: return "running";
    case Phase::closing: return "closing";
    case Phase::done: return "done";
    case Phase::failed: return "failed";
  }
  return "?";
}

int Client::fd() const {
  if (!session_ || finished()) return -1;
  return ssh_get_fd(session_.get());
}

// Write interest until the TCP connect completes, then only while libssh has bytes queued:
// a connected socket is always writable and would spin the loop.
short Client::poll_events() const {
  if (fd() < 0) return 0;
  bool write = phase_ == Phase::connecting || (ssh_get_poll_flags(session_.get()) & SSH_WRITE_PENDING);
  return static_cast<short>(POLLIN | (write ? POLLOUT : 0));
}

void Client::step() {
  while (advance()) {
  }
}

// One step of the current phase; true if the next phase may proceed at once.
bool Client::advance() {
  switch (phase_) {
    case Phase::connecting:
    case Phase::handshaking: return step_connect();
    case Phase::authenticating: return step_auth();
    case Phase::opening: return step_open();
    case Phase::requesting: return step_request();
    case Phase::running: return step_running();
    case Phase::closing: return step_closing();
    case Phase::done:
    case Phase::failed: return false;
  }
  return false;
}

bool Client::step_connect() {
  int rc = ssh_connect(session_.get());
  if (rc == SSH_AGAIN) {
    if (phase_ == Phase::connecting && tcp_connected()) phase_ = Phase::handshaking;
    return false;
  }
  if (rc != SSH_OK) return fail("connect");
  timings_.connected = Clock::now();
  return enter(Phase::authenticating);
}

bool Client::tcp_connected() const {
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  int fd = ssh_get_fd(session_.get());
  return fd >= 0 && ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0;
}

bool Client::step_auth() {
  int rc = ssh_userauth_publickey(session_.get(), nullptr, options_.key);
  if (rc == SSH_AUTH_AGAIN) return false;
  if (rc == SSH_AUTH_DENIED) return fail_with("authentication: denied");
  if (rc != SSH_AUTH_SUCCESS) return fail(fmt::format("authentication (result {})", rc));
  timings_.authed = Clock::now();
  return new_channel();
}

bool Client::new_channel() {
  channel_.reset(ssh_channel_new(session_.get()));
  if (!channel_) return fail("ssh_channel_new");
  callbacks_.userdata = this;
  callbacks_.channel_exit_status_function = [](ssh_session, ssh_channel, int status, void* self) {
    static_cast<Client*>(self)->exit_status_ = status;
  };
  // Any libssh call may read the server's packets (a write, a poll): the data is taken as it is
  // read, so none is left in libssh's buffers where no poll of the socket would see it.
  callbacks_.channel_data_function = [](ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr,
                                        void* self) -> int {
    static_cast<Client*>(self)->taken_[is_stderr ? 1 : 0].append(static_cast<const char*>(data), len);
    return static_cast<int>(len);
  };
  ssh_callbacks_init(&callbacks_);
  if (ssh_set_channel_callbacks(channel_.get(), &callbacks_) != SSH_OK)
    return fail("ssh_set_channel_callbacks");
  return enter(Phase::opening);
}

bool Client::step_open() {
  int rc = ssh_channel_open_session(channel_.get());
  if (rc == SSH_AGAIN) return false;
  if (rc != SSH_OK) return fail("channel open");
  return enter(Phase::requesting);
}

bool Client::step_request() {
  const std::string& command = options_.command;
  int rc = command.empty() ? ssh_channel_request_shell(channel_.get())
                           : ssh_channel_request_exec(channel_.get(), command.c_str());
  if (rc == SSH_AGAIN) return false;
  if (rc != SSH_OK) return fail(command.empty() ? "shell request" : fmt::format("exec {}", command));
  timings_.started = Clock::now();
  return enter(Phase::running);
}

bool Client::step_running() { return read_output() && enter(Phase::closing); }

// The exit status comes before or with the channel close; wait for either.
bool Client::step_closing() {
  if (ssh_channel_poll(channel_.get(), 0) == SSH_ERROR) return fail("waiting for the exit status");
  if (!exit_status_ && !ssh_channel_is_closed(channel_.get())) return false;
  phase_ = Phase::done;
  return false;
}

// Reads what has arrived; true at the end of the output. Each poll reads the socket once, at
// most a few KiB: polls go on until one reads nothing, so the socket is drained.
bool Client::read_output() {
  for (uint64_t before = ~uint64_t{0}; before != socket_counter_.in_bytes;) {
    before = socket_counter_.in_bytes;
    if (ssh_channel_poll(channel_.get(), 0) == SSH_ERROR) return fail("reading output");
    if (!deliver_taken()) return false;
  }
  if (ssh_channel_is_eof(channel_.get()) || ssh_channel_is_closed(channel_.get())) return true;
  if (!ssh_is_connected(session_.get())) return fail_with("connection lost");
  return false;
}

// Delivers what the data callback took; false if the output handler disconnected the client.
bool Client::deliver_taken() {
  for (int is_stderr : {1, 0}) {
    std::string bytes = std::exchange(taken_[is_stderr], {});
    if (!bytes.empty()) deliver(is_stderr, bytes);
    if (finished()) return false;
  }
  return true;
}

void Client::deliver(int is_stderr, std::string_view bytes) {
  if (is_stderr) {
    stderr_.append(bytes.substr(0, kStderrKept - std::min(kStderrKept, stderr_.size())));
    return;
  }
  if (timings_.first_byte == Clock::time_point{}) timings_.first_byte = Clock::now();
  on_output_(bytes);
}

bool Client::send(std::string_view bytes) {
  if (phase_ != Phase::running) return false;
  int n = ssh_channel_write(channel_.get(), bytes.data(), static_cast<uint32_t>(bytes.size()));
  if (n == SSH_ERROR) return fail("write");
  step();
  return n == static_cast<int>(bytes.size());
}

void Client::disconnect() {
  if (finished()) return;
  channel_.reset();
  session_.reset();
  phase_ = Phase::done;
}

bool Client::enter(Phase phase) {
  phase_ = phase;
  return true;
}

// Always false, for `return fail(...)` in the steps.
bool Client::fail(std::string_view step) {
  return fail_with(fmt::format("{}: {}", step, session_ ? ssh_get_error(session_.get()) : "no session"));
}

// Frees the connection at once: a failed client holds no socket while its owner looks on.
bool Client::fail_with(std::string error) {
  error_ = std::move(error);
  channel_.reset();
  session_.reset();
  phase_ = Phase::failed;
  return false;
}

}  // namespace xcg::ssh_client
