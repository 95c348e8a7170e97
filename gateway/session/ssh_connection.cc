#include "gateway/session/ssh_connection.h"

#include <poll.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include "base/log.h"
#include "gateway/session/login_marks.h"
#include "gateway/session/node_client.h"

namespace xcg::gateway {
namespace {

SshConnection* self(void* userdata) { return static_cast<SshConnection*>(userdata); }

bool allowed_key_type(ssh_keytypes_e t) {
  switch (t) {
    case SSH_KEYTYPE_ED25519:
    case SSH_KEYTYPE_ECDSA_P256:
    case SSH_KEYTYPE_ECDSA_P384:
    case SSH_KEYTYPE_ECDSA_P521:
    case SSH_KEYTYPE_RSA: return true;
    default: return false;  // DSA, certificates and FIDO (sk-*) keys: see docs/architecture.md
  }
}

// The public key blob, base64 as in authorized_keys.
std::optional<std::string> key_base64(ssh_key key) {
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK) return std::nullopt;
  std::string base64(b64);
  std::free(b64);
  return base64;
}

// Every libssh callback is a noexcept trampoline: an exception must never unwind into C.
template <class F, class R>
R guarded(R on_error, F&& f) noexcept {
  try {
    return f();
  } catch (const std::exception& e) {
    log::error("session: {}", e.what());
  } catch (...) {
    log::error("session: unknown exception");
  }
  return on_error;
}

}  // namespace

SshConnection::SshConnection(ssh_session session, ssh_event event, BrokerClient& broker, Limits limits,
                             MakeCore make_core)
    : session_(session), event_(event), broker_(broker), limits_(limits), make_core_(std::move(make_core)) {}

SshConnection::~SshConnection() {
  unwatch_console();
  command_channels_.clear();
  core_.reset();  // before the channel it writes to goes
  if (channel_ != nullptr) ssh_remove_channel_callbacks(channel_, &channel_cb_);
}

void SshConnection::install() {
  install_server_callbacks();
  install_channel_callbacks();
  if (ssh_event_add_fd(event_, broker_.fd(), POLLIN, &SshConnection::on_broker_readable, this) != SSH_OK)
    throw std::runtime_error("ssh_event_add_fd failed for the broker socket");
}

void SshConnection::install_server_callbacks() {
  server_cb_.userdata = this;
  set_auth_callbacks();
  server_cb_.channel_open_request_session_function = [](ssh_session, void* ud) -> ssh_channel {
    return guarded(static_cast<ssh_channel>(nullptr), [&] { return self(ud)->on_channel_open(); });
  };
  ssh_callbacks_init(&server_cb_);
  ssh_set_server_callbacks(session_, &server_cb_);
  refuse_other_auth_methods();
}

void SshConnection::set_auth_callbacks() {
  // "none" and "password" are never accepted, but each try counts like a refused key, so a
  // client cannot probe forever within the login grace time.
  server_cb_.auth_none_function = [](ssh_session, const char*, void* ud) -> int {
    // Every client starts with one "none" to learn the methods; like OpenSSH, that one is free.
    return guarded(static_cast<int>(SSH_AUTH_DENIED), [&] {
      return std::exchange(self(ud)->first_none_, false) ? static_cast<int>(SSH_AUTH_DENIED)
                                                         : self(ud)->deny_attempt();
    });
  };
  server_cb_.auth_password_function = [](ssh_session, const char*, const char*, void* ud) -> int {
    return guarded(static_cast<int>(SSH_AUTH_DENIED), [&] { return self(ud)->deny_attempt(); });
  };
  server_cb_.auth_pubkey_function = [](ssh_session, const char* user, ssh_key key, char state,
                                       void* ud) -> int {
    return guarded(static_cast<int>(SSH_AUTH_DENIED),
                   [&] { return self(ud)->on_auth_pubkey(user, key, state); });
  };
  // libssh answers gssapi-with-mic itself, past the message callback, unless this is
  // set: refuse (no mechanism chosen) and count it.
  server_cb_.gssapi_select_oid_function = [](ssh_session, const char*, int, ssh_string*,
                                             void* ud) -> ssh_string {
    return guarded(static_cast<ssh_string>(nullptr), [&] {
      self(ud)->deny_attempt();
      return static_cast<ssh_string>(nullptr);
    });
  };
}

void SshConnection::refuse_other_auth_methods() {
  // libssh hands here what no server callback took. For authentication that is
  // keyboard-interactive and hostbased: refused like the rest, and counted,
  // or a client could try them for the whole login grace time. Returning 1 lets libssh send
  // its default refusal.
  ssh_set_message_callback(
      session_,
      [](ssh_session, ssh_message message, void* ud) -> int {
        return guarded(1, [&] {
          if (ssh_message_type(message) == SSH_REQUEST_AUTH) self(ud)->deny_attempt();
          return 1;
        });
      },
      this);
  ssh_set_auth_methods(session_, SSH_AUTH_METHOD_PUBLICKEY);
}

void SshConnection::install_channel_callbacks() {
  // Unset callbacks (x11, agent, env, subsystem, signal) make libssh refuse those requests.
  channel_cb_.userdata = this;
  channel_cb_.channel_pty_request_function = [](ssh_session, ssh_channel, const char* term, int cols,
                                                int rows, int, int, void* ud) -> int {
    return guarded(-1, [&] { return self(ud)->on_pty_request(term, cols, rows); });
  };
  channel_cb_.channel_pty_window_change_function = [](ssh_session, ssh_channel, int cols, int rows, int, int,
                                                      void* ud) -> int {
    return guarded(-1, [&] { return self(ud)->on_window_change(cols, rows); });
  };
  channel_cb_.channel_shell_request_function = [](ssh_session, ssh_channel, void* ud) -> int {
    return guarded(1, [&] { return self(ud)->on_shell(); });
  };
  channel_cb_.channel_exec_request_function = [](ssh_session, ssh_channel, const char* command,
                                                 void* ud) -> int {
    return guarded(1, [&] { return self(ud)->on_exec(command); });
  };
  channel_cb_.channel_data_function = [](ssh_session, ssh_channel, void* data, uint32_t len, int,
                                         void* ud) -> int {
    return guarded(static_cast<int>(len), [&] { return self(ud)->on_data(data, len); });
  };
  channel_cb_.channel_eof_function = [](ssh_session, ssh_channel, void* ud) {
    guarded(0, [&] { return self(ud)->core_->input_ended(), 0; });
  };
  channel_cb_.channel_close_function = [](ssh_session, ssh_channel, void* ud) {
    guarded(0, [&] {
      self(ud)->closed_by_client_ = true;
      return self(ud)->core_->hung_up(), 0;
    });
  };
  ssh_callbacks_init(&channel_cb_);
}

int SshConnection::on_broker_readable(socket_t /*fd*/, int /*revents*/, void* userdata) {
  return guarded(0, [&] { return self(userdata)->broker_.take_unsolicited(), 0; });
}

// --- authentication -------------------------------------------------------------------------

int SshConnection::on_auth_pubkey(const char* user, ssh_key key, char signature_state) {
  if (customer_ || done_) return SSH_AUTH_DENIED;
  bool signed_ok = signature_state == SSH_PUBLICKEY_STATE_VALID;
  std::optional<ipc::AuthorizeAns> answer;
  if ((signature_state == SSH_PUBLICKEY_STATE_NONE || signed_ok) && allowed_key_type(ssh_key_type(key))) {
    auto base64 = key_base64(key);
    if (!base64) return SSH_AUTH_DENIED;
    auto r = broker_.authorize({std::string(user ? user : "").substr(0, 256),
                                ssh_key_type_to_char(ssh_key_type(key)), std::move(*base64), signed_ok});
    if (!r) {
      log::error("authorize: {}", r.error().message);
      done_ = true;
      return SSH_AUTH_DENIED;
    }
    answer = std::move(*r);
  }
  if (!answer || !answer->ok)
    return signature_state == SSH_PUBLICKEY_STATE_NONE ? refuse_offer() : deny_attempt();
  // Bind the identity only on a signed request, to the key whose signature libssh just checked.
  if (signed_ok) {
    customer_ = Customer{answer->domain, answer->console_on_login, answer->actions, answer->readonly,
                         answer->fingerprint};
    via_front_ = is_front_user(user ? user : "");  // the broker accepted a front's key for it
    mark_login_step(LoginStep::auth);
  }
  return SSH_AUTH_SUCCESS;
}

int SshConnection::deny_attempt() {
  if (++auth_failures_ >= static_cast<int>(limits_.max_auth_tries)) done_ = true;  // MaxAuthTries
  return SSH_AUTH_DENIED;
}

// An offer without a signature proves nothing and costs us one lookup. OpenSSH counts offers
// as failed logins, so a customer whose agent holds more keys than MaxAuthTries never reaches
// the right one; we give offers their own, larger budget instead.
int SshConnection::refuse_offer() {
  if (++refused_offers_ >= static_cast<int>(limits_.max_key_offers)) done_ = true;
  return SSH_AUTH_DENIED;
}

// --- channel requests -----------------------------------------------------------------------

ssh_channel SshConnection::on_channel_open() {
  if (!customer_) return nullptr;
  if (channel_ != nullptr) return open_command_channel();
  channel_ = ssh_channel_new(session_);
  if (channel_ == nullptr) return nullptr;
  core_ = make_core_(*this, *customer_);
  ssh_set_channel_callbacks(channel_, &channel_cb_);
  mark_login_step(LoginStep::channel);
  return channel_;
}

// A customer gets one session channel. A front gets a few more at a time, one per command its
// browser page asks, so that its buttons and status line need no login of their own.
ssh_channel SshConnection::open_command_channel() {
  if (!via_front_ || command_channels_.size() >= kMaxFrontCommandChannels) return nullptr;
  auto channel = std::make_unique<ExecChannel>(session_, broker_, *customer_);
  if (channel->channel() == nullptr) return nullptr;
  command_channels_.push_back(std::move(channel));
  return command_channels_.back()->channel();
}

void SshConnection::step_command_channels(std::chrono::steady_clock::time_point now) {
  for (auto& channel : command_channels_) channel->step(now);
  std::erase_if(command_channels_, [](const auto& channel) { return channel->over(); });
}

int SshConnection::on_pty_request(const char* term, int cols, int rows) {
  if (have_pty_ || core_->started() || cols < 0 || rows < 0) return -1;
  have_pty_ = true;
  core_->pty(PtySize{std::string(term ? term : "").substr(0, 64), cols, rows});
  return 0;
}

// The guest's serial console has no window size to pass it to; a node's relay does.
int SshConnection::on_window_change(int cols, int rows) {
  if (!have_pty_ || cols < 0 || rows < 0) return -1;
  core_->window_changed(PtySize{"", cols, rows});
  return 0;
}

int SshConnection::on_shell() { return core_->start_shell() ? 0 : 1; }

int SshConnection::on_exec(const char* command) { return core_->start_exec(command ? command : "") ? 0 : 1; }

int SshConnection::on_data(const void* data, uint32_t len) {
  // Take everything: libssh would otherwise hold the rest until the next packet.
  core_->input(std::string_view(static_cast<const char*>(data), len), std::chrono::steady_clock::now());
  return static_cast<int>(len);
}

// --- the session on the channel -----------------------------------------------------------------

void SshConnection::step(std::chrono::steady_clock::time_point now) {
  if (!core_) {
    if (broker_.revoked()) done_ = true;  // nobody to tell why
    return;
  }
  core_->step(now);
  step_command_channels(now);
  watch_console();
}

int SshConnection::on_console_readable(socket_t /*fd*/, int /*revents*/, void* userdata) {
  return guarded(0, [&] {
    self(userdata)->core_->console_readable();
    self(userdata)->watch_console();
    return 0;
  });
}

void SshConnection::watch_console() {
  int wanted = core_ ? core_->console_to_watch().value_or(-1) : -1;
  if (wanted == watched_console_) return;
  unwatch_console();
  if (wanted < 0) return;
  if (ssh_event_add_fd(event_, wanted, POLLIN, &SshConnection::on_console_readable, this) != SSH_OK)
    throw std::runtime_error("ssh_event_add_fd failed for the console socket");
  watched_console_ = wanted;
}

void SshConnection::unwatch_console() {
  if (watched_console_ >= 0) ssh_event_remove_fd(event_, watched_console_);
  watched_console_ = -1;
}

// --- the Terminal: the channel ------------------------------------------------------------------

Result<size_t> SshConnection::write(Stream stream, std::string_view bytes) {
  return write_channel(channel_, stream, bytes);
}

// SSH has no place for the reason: the customer read it in the output already.
void SshConnection::end(int exit_status, std::string_view) {
  // Each fails only if the client is gone already, and then there is nobody left to tell.
  (void)ssh_channel_request_send_exit_status(channel_, exit_status);
  (void)ssh_channel_send_eof(channel_);
  (void)ssh_channel_close(channel_);
}

void SshConnection::close() {
  // Give the client a moment to read the exit status and close its side.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (channel_ != nullptr && !closed_by_client_ && ssh_is_connected(session_) &&
         !(ssh_get_status(session_) & (SSH_CLOSED | SSH_CLOSED_ERROR)) &&
         std::chrono::steady_clock::now() < deadline) {
    if (ssh_event_dopoll(event_, 100) == SSH_ERROR) break;
  }
  unwatch_console();
  command_channels_.clear();
  core_.reset();  // closes the console socket: the hub records the detach
  if (channel_ != nullptr) {
    // ssh_disconnect frees the channel; make sure no callback of ours outlives it.
    ssh_remove_channel_callbacks(channel_, &channel_cb_);
    channel_ = nullptr;
  }
  ssh_disconnect(session_);
}

}  // namespace xcg::gateway
