#include "gateway/session/node_client.h"

#include <poll.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <stdexcept>

#include <fmt/format.h>

#include "base/log.h"

namespace xcg::gateway {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kHostKeyAlgorithms = "ssh-ed25519";  // the registry pins the node's Ed25519 key

void set(ssh_session session, ssh_options_e option, const void* value) {
  if (ssh_options_set(session, option, value) != SSH_OK)
    throw std::runtime_error(fmt::format("cannot set SSH client option {}", static_cast<int>(option)));
}

// Nothing from files: the session is chrooted and its filter refuses open(); the paths are set
// so that libssh does not look for a home directory.
void configure(ssh_session session, int fd, const NodeLogin& login) {
  bool no = false;
  set(session, SSH_OPTIONS_PROCESS_CONFIG, &no);
  set(session, SSH_OPTIONS_SSH_DIR, "/nonexistent");
  set(session, SSH_OPTIONS_KNOWNHOSTS, "/dev/null");
  set(session, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
  set(session, SSH_OPTIONS_HOST, login.node.c_str());
  set(session, SSH_OPTIONS_USER, login.user.c_str());
  set(session, SSH_OPTIONS_HOSTKEYS, kHostKeyAlgorithms);
  set(session, SSH_OPTIONS_COMPRESSION, "no");
  set(session, SSH_OPTIONS_FD, &fd);
  ssh_set_blocking(session, 0);
}

// Waits until the socket can move the call on, or the deadline passes.
Result<void> wait(ssh_session session, Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (left.count() <= 0) return fail(Errc::timeout, "timed out");
  short events = POLLIN;
  if (ssh_get_poll_flags(session) & SSH_WRITE_PENDING) events |= POLLOUT;
  pollfd p{ssh_get_fd(session), events, 0};
  if (::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 1000))) < 0 && errno != EINTR)
    return fail_errno("poll");
  return {};
}

// Repeats the non-blocking `call` until it is done (SSH_OK, which is also SSH_AUTH_SUCCESS).
template <class Call>
Result<void> pump(ssh_session session, Clock::time_point deadline, std::string_view what, Call call) {
  for (;;) {
    int rc = call();
    if (rc == SSH_OK) return {};
    if (rc != SSH_AGAIN && rc != SSH_AUTH_AGAIN)
      return fail(Errc::unavailable, fmt::format("{}: {}", what, ssh_get_error(session)));
    if (auto waited = wait(session, deadline); !waited)
      return fail(Errc::timeout, fmt::format("{}: {}", what, waited.error().message));
  }
}

std::string server_fingerprint(ssh_session session) {
  ssh_key raw = nullptr;
  if (ssh_get_server_publickey(session, &raw) != SSH_OK) return "";
  SshKey key(raw);
  unsigned char* hash = nullptr;
  size_t length = 0;
  if (ssh_get_publickey_hash(key.get(), SSH_PUBLICKEY_HASH_SHA256, &hash, &length) != SSH_OK) return "";
  char* text = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, length);
  ssh_clean_pubkey_hash(&hash);
  SshString owned(text);
  return owned ? std::string(owned.get()) : "";
}

Result<void> log_in(ssh_session session, const NodeLogin& login, Clock::time_point deadline) {
  if (auto r = pump(session, deadline, "key exchange", [&] { return ssh_connect(session); }); !r) return r;
  std::string presented = server_fingerprint(session);
  if (presented.empty() || presented != login.host_key_fingerprint) {
    log::warn("node {} presented host key {}, the registry has {}", login.node, presented,
              login.host_key_fingerprint);
    return fail(Errc::not_allowed, "host key mismatch");
  }
  return pump(session, deadline, "login",
              [&] { return ssh_userauth_publickey(session, nullptr, login.front_key); });
}

Result<void> start_channel(ssh_session session, ssh_channel channel, const NodeLogin& login,
                           Clock::time_point deadline) {
  if (auto r = pump(session, deadline, "channel", [&] { return ssh_channel_open_session(channel); }); !r)
    return r;
  if (login.pty) {
    const char* term = login.pty->term.empty() ? "xterm" : login.pty->term.c_str();
    auto pty = [&] { return ssh_channel_request_pty_size(channel, term, login.pty->cols, login.pty->rows); };
    if (auto r = pump(session, deadline, "pty", pty); !r) return r;
  }
  if (login.command)
    return pump(session, deadline, "exec",
                [&] { return ssh_channel_request_exec(channel, login.command->c_str()); });
  return pump(session, deadline, "shell", [&] { return ssh_channel_request_shell(channel); });
}

// What the channel's command prints on stdout, up to its end.
Result<std::string> read_to_end(ssh_session session, ssh_channel channel, Clock::time_point deadline) {
  constexpr size_t kMaxAnswer = 4096;
  std::string out;
  std::array<char, 1024> buffer;
  for (;;) {
    int n = ssh_channel_read_nonblocking(channel, buffer.data(), buffer.size(), 0);
    if (n == SSH_ERROR) return fail(Errc::unavailable, ssh_get_error(session));
    if (n > 0 && out.size() + static_cast<size_t>(n) > kMaxAnswer)
      return fail(Errc::invalid_input, "too long");
    if (n > 0) out.append(buffer.data(), static_cast<size_t>(n));
    if (n > 0) continue;
    if (ssh_channel_is_eof(channel) || ssh_channel_is_closed(channel)) return out;
    if (auto waited = wait(session, deadline); !waited) return tl::unexpected(waited.error());
  }
}

// A node refuses this further channel to a customer's own login, and an older node to a front:
// no actions then.
std::optional<std::string> ask_actions(ssh_session session, Clock::time_point deadline) {
  SshChannel channel(ssh_channel_new(session));
  if (!channel) return std::nullopt;
  NodeLogin exec{.command = "actions"};
  auto answer = [&]() -> Result<std::string> {
    if (auto r = start_channel(session, channel.get(), exec, deadline); !r) return tl::unexpected(r.error());
    return read_to_end(session, channel.get(), deadline);
  }();
  if (!answer) {
    log::info("the node offers no actions: {}", answer.error().message);
    return std::nullopt;
  }
  if (!answer->empty() && answer->back() == '\n') answer->pop_back();
  return *answer;
}

}  // namespace

SshKey load_front_key(const std::vector<std::string>& host_keys_pem) {
  for (const auto& pem : host_keys_pem) {
    ssh_key raw = nullptr;
    if (ssh_pki_import_privkey_base64(pem.c_str(), nullptr, nullptr, nullptr, &raw) != SSH_OK) continue;
    SshKey key(raw);
    if (ssh_key_type(key.get()) == SSH_KEYTYPE_ED25519) return key;
  }
  throw std::runtime_error("a front needs an Ed25519 host key");
}

std::string front_user(const std::string& domain, const std::string& fingerprint, bool readonly) {
  return fmt::format("xcg-front:{}:{}:{}", domain, fingerprint, readonly ? "ro" : "rw");
}

bool is_front_user(std::string_view user) { return user.starts_with("xcg-front:"); }

Result<NodeChannel> open_node_channel(UniqueFd node, const NodeLogin& login, Clock::time_point deadline) {
  NodeChannel out{SshSession(ssh_new()), nullptr, std::nullopt};
  if (!out.session) return fail(Errc::system, "ssh_new failed");
  configure(out.session.get(), node.get(), login);
  static_cast<void>(node.release());  // libssh closes it with the session
  if (auto r = log_in(out.session.get(), login, deadline); !r) return tl::unexpected(r.error());
  out.channel.reset(ssh_channel_new(out.session.get()));
  if (!out.channel) return fail(Errc::system, "ssh_channel_new failed");
  if (auto r = start_channel(out.session.get(), out.channel.get(), login, deadline); !r)
    return tl::unexpected(r.error());
  // After the first channel, which is the node's session: a further one is a command's.
  if (login.ask_actions) out.actions = ask_actions(out.session.get(), deadline);
  return out;
}

}  // namespace xcg::gateway
