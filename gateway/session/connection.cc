#include "gateway/session/connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <fmt/format.h>

#include "base/log.h"
#include "menu/commands.h"

namespace xcg::gateway {
namespace {

constexpr size_t kMaxPendingOutput = 256 * 1024;  // then stop reading the console
constexpr size_t kMaxPendingInput = 64 * 1024;    // customer bytes queued for the hub
constexpr size_t kReadChunk = 16 * 1024;
// Reads per wake-up: a fast console fills several chunks between two polls, and each poll
// round costs more than a read.
constexpr int kReadsPerWakeup = 4;
// Output is queued in chunks up to this size, so a burst becomes few channel writes.
constexpr size_t kOutputChunk = 64 * 1024;

Connection* self(void* userdata) { return static_cast<Connection*>(userdata); }

// A broker answer's sentence, or why there was none.
template <class Answer>
std::string text_of(const Result<Answer>& answer) {
  return answer ? answer->text : answer.error().message;
}

bool allowed_key_type(ssh_keytypes_e t) {
  switch (t) {
    case SSH_KEYTYPE_ED25519:
    case SSH_KEYTYPE_ECDSA_P256:
    case SSH_KEYTYPE_ECDSA_P384:
    case SSH_KEYTYPE_ECDSA_P521:
    case SSH_KEYTYPE_RSA:
      return true;
    default:
      return false;  // DSA, certificates and FIDO (sk-*) keys: see docs/architecture.md
  }
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

Connection::Connection(ssh_session session, ssh_event event, BrokerClient& broker, Limits limits)
    : session_(session), event_(event), broker_(broker), limits_(limits) {}

Connection::~Connection() {
  detach_console();
  if (channel_ != nullptr) ssh_remove_channel_callbacks(channel_, &channel_cb_);
}

void Connection::install() {
  server_cb_.userdata = this;
  // "none" and "password" are never accepted, but each try counts like a refused key, so a
  // client cannot probe forever within the login grace time.
  server_cb_.auth_none_function = [](ssh_session, const char*, void* ud) -> int {
    // Every client starts with one "none" to learn the methods; like OpenSSH, that one is free.
    return guarded(static_cast<int>(SSH_AUTH_DENIED), [&] {
      return std::exchange(self(ud)->first_none_, false) ? static_cast<int>(SSH_AUTH_DENIED) : self(ud)->deny_attempt();
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
  server_cb_.channel_open_request_session_function = [](ssh_session, void* ud) -> ssh_channel {
    return guarded(static_cast<ssh_channel>(nullptr), [&] { return self(ud)->on_channel_open(); });
  };
  // libssh answers gssapi-with-mic itself, past the message callback below, unless this is
  // set: refuse (no mechanism chosen) and count it.
  server_cb_.gssapi_select_oid_function = [](ssh_session, const char*, int, ssh_string*, void* ud) -> ssh_string {
    return guarded(static_cast<ssh_string>(nullptr), [&] {
      self(ud)->deny_attempt();
      return static_cast<ssh_string>(nullptr);
    });
  };
  ssh_callbacks_init(&server_cb_);
  ssh_set_server_callbacks(session_, &server_cb_);
  // libssh hands here what no callback above took. For authentication that is
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

  // Unset callbacks (x11, agent, env, subsystem, signal) make libssh refuse those requests.
  channel_cb_.userdata = this;
  channel_cb_.channel_pty_request_function = [](ssh_session, ssh_channel, const char*, int cols,
                                                int rows, int, int, void* ud) -> int {
    return guarded(-1, [&] { return self(ud)->on_pty_request(cols, rows); });
  };
  channel_cb_.channel_pty_window_change_function = [](ssh_session, ssh_channel, int, int, int, int,
                                                      void*) -> int {
    return 0;  // the guest's serial console has no window size to pass it to
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
    guarded(0, [&] { return self(ud)->on_channel_eof(), 0; });
  };
  channel_cb_.channel_close_function = [](ssh_session, ssh_channel, void* ud) {
    guarded(0, [&] { return self(ud)->on_channel_close(), 0; });
  };
  ssh_callbacks_init(&channel_cb_);

  if (ssh_event_add_fd(event_, broker_.fd(), POLLIN, &Connection::on_broker_readable, this) != SSH_OK)
    throw std::runtime_error("ssh_event_add_fd failed for the broker socket");
}

int Connection::on_broker_readable(socket_t, int, void* userdata) {
  return guarded(0, [&] { return self(userdata)->broker_.take_unsolicited(), 0; });
}

// --- authentication -------------------------------------------------------------------------

int Connection::on_auth_pubkey(const char* user, ssh_key key, char signature_state) {
  if (authenticated_ || done_) return SSH_AUTH_DENIED;
  bool denied = signature_state != SSH_PUBLICKEY_STATE_NONE && signature_state != SSH_PUBLICKEY_STATE_VALID;
  if (!denied && !allowed_key_type(ssh_key_type(key))) denied = true;

  std::optional<ipc::AuthorizeAns> answer;
  if (!denied) {
    char* b64 = nullptr;
    if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK) return SSH_AUTH_DENIED;
    std::string base64(b64);
    std::free(b64);
    ipc::AuthorizeReq req{std::string(user ? user : "").substr(0, 256),
                          ssh_key_type_to_char(ssh_key_type(key)), std::move(base64),
                          signature_state == SSH_PUBLICKEY_STATE_VALID};
    auto r = broker_.authorize(req);
    if (!r) {
      log::error("authorize: {}", r.error().message);
      done_ = true;
      return SSH_AUTH_DENIED;
    }
    answer = *r;
  }
  if (!answer || !answer->ok) {
    return signature_state == SSH_PUBLICKEY_STATE_NONE ? refuse_offer() : deny_attempt();
  }
  if (signature_state == SSH_PUBLICKEY_STATE_VALID) {
    // Bind the identity only now, to the key whose signature libssh just checked.
    authenticated_ = true;
    domain_ = answer->domain;
    console_on_login_ = answer->console_on_login;
    actions_ = answer->actions;
    readonly_ = answer->readonly;
  }
  return SSH_AUTH_SUCCESS;
}

int Connection::deny_attempt() {
  if (++auth_failures_ >= static_cast<int>(limits_.max_auth_tries)) done_ = true;  // MaxAuthTries
  return SSH_AUTH_DENIED;
}

// An offer without a signature proves nothing and costs us one lookup. OpenSSH counts offers
// as failed logins, so a customer whose agent holds more keys than MaxAuthTries never reaches
// the right one; we give offers their own, larger budget instead.
int Connection::refuse_offer() {
  if (++refused_offers_ >= static_cast<int>(limits_.max_key_offers)) done_ = true;
  return SSH_AUTH_DENIED;
}

// --- channel requests -----------------------------------------------------------------------

ssh_channel Connection::on_channel_open() {
  if (!authenticated_ || channel_ != nullptr) return nullptr;  // one session channel only
  channel_ = ssh_channel_new(session_);
  if (channel_ == nullptr) return nullptr;
  ssh_set_channel_callbacks(channel_, &channel_cb_);
  return channel_;
}

int Connection::on_pty_request(int cols, int rows) {
  if (have_pty_ || started_ || cols < 0 || rows < 0) return -1;
  have_pty_ = true;
  return 0;
}

int Connection::on_shell() {
  if (started_) return 1;  // one shell or exec per channel
  started_ = true;
  pending_start_ = Start::shell;
  return 0;
}

int Connection::on_exec(const char* command) {
  if (started_) return 1;
  started_ = true;
  pending_start_ = Start::exec;
  pending_command_ = command ? std::string(command).substr(0, 4096) : std::string();
  return 0;
}

int Connection::on_data(const void* data, uint32_t len) {
  // Take everything (libssh would otherwise hold the rest until the next packet) but keep
  // the queue bounded: a customer pasting faster than the guest reads loses the excess.
  size_t room = kMaxPendingInput - std::min(kMaxPendingInput, input_.size());
  input_.append(static_cast<const char*>(data), std::min<size_t>(room, len));
  last_input_ = std::chrono::steady_clock::now();
  return static_cast<int>(len);
}

void Connection::on_channel_eof() {
  // The console keeps showing output after the client's stdin ends (`ssh gw console </dev/null`),
  // and an exec command runs to its end; only the menu has nothing left to do.
  client_eof_ = true;
}

void Connection::on_channel_close() { closed_by_client_ = true; }

// --- what runs on the channel ----------------------------------------------------------------

void Connection::check_idle(std::chrono::steady_clock::time_point now) {
  if (limits_.idle_timeout_s == 0 || mode_ == Mode::idle || mode_ == Mode::finishing) return;
  if (now - last_input_ < std::chrono::seconds(limits_.idle_timeout_s)) return;
  std::string why = fmt::format("\r\n[xcg: idle for {} s; closing the session]\r\n", limits_.idle_timeout_s);
  out(why);
  finish(0);
}

void Connection::check_revoked() {
  if (!broker_.revoked() || mode_ == Mode::finishing || done_) return;
  if (!channel_) {
    done_ = true;
    return;
  }
  detach_console();
  out(fmt::format("\r\n[xcg: {}]\r\n", printable(*broker_.revoked())));
  finish(1);
}

void Connection::step(std::chrono::steady_clock::time_point now) {
  check_revoked();
  if (pending_start_ == Start::shell) {
    pending_start_ = Start::none;
    start_shell();
  } else if (pending_start_ == Start::exec) {
    pending_start_ = Start::none;
    run_exec(pending_command_);
  }
  if (!input_.empty()) {
    std::string bytes = std::move(input_);
    input_.clear();
    if (mode_ == Mode::menu && menu_) {
      handle_menu_request(menu_->feed(bytes));
      send_menu_output();
    } else if (mode_ == Mode::console) {
      pump_console_input(bytes);
    }
  }
  if (console_) pump_console_input({});
  if (closed_by_client_ && mode_ != Mode::finishing) {
    detach_console();
    done_ = true;
  }
  if (client_eof_ && mode_ == Mode::menu) finish(0);
  check_idle(now);
  flush();
  if (mode_ == Mode::finishing && output_.empty() && exit_status_ && channel_ != nullptr) {
    ssh_channel_request_send_exit_status(channel_, *exit_status_);
    ssh_channel_send_eof(channel_);
    ssh_channel_close(channel_);
    exit_status_.reset();
    done_ = true;
  }
}

std::string Connection::screen_status() {
  if (menu_) {
    auto who = broker_.who();
    menu_->set_viewers(who ? menu::viewers_line(who->viewers) : "");
  }
  auto r = broker_.status();
  if (!r) return fmt::format("{}: status unavailable", domain_);
  return r->text;
}

void Connection::start_shell() {
  menu_.emplace(domain_, actions_, readonly_);
  mode_ = Mode::menu;
  if (console_on_login_ && config::allows(actions_, config::Action::console)) {
    attach_console(true);
    return;
  }
  menu_->show_status(screen_status());
  send_menu_output();
}

void Connection::handle_menu_request(menu::Request r) {
  using K = menu::Request::Kind;
  switch (r.kind) {
    case K::none: return;
    case K::status: menu_->show_status(screen_status()); return;
    case K::exit: send_menu_output(); finish(0); return;
    case K::attach_console:
      send_menu_output();  // the menu's echo and hint come before the console's bytes
      attach_console(true);
      return;
    case K::action: {
      auto ans = broker_.action(r.action);
      menu_->action_done(r.action, ans && ans->ok, text_of(ans), screen_status());
      return;
    }
    case K::sysrq: {
      auto ans = broker_.sysrq(r.key);
      menu_->action_done(config::Action::sysrq, ans && ans->ok, text_of(ans), screen_status());
      return;
    }
    case K::log: {
      auto ans = broker_.console_log(menu::Menu::kLogLines);  // asked before screen_status asks
      menu_->show_log(text_of(ans), screen_status());
      return;
    }
  }
}

void Connection::run_exec(const std::string& command) {
  auto cmd = menu::parse_command(command);
  if (!cmd) {
    err("xcg: " + cmd.error().message + "\n");
    return finish(2);
  }
  switch (cmd->command) {
    case menu::Command::help:
      out(menu::help_text(domain_, actions_, readonly_));
      return finish(0);
    case menu::Command::status: return finish_with(broker_.status());
    case menu::Command::console:
      exec_console_ = true;
      return attach_console(false);
    case menu::Command::log: return exec_log(cmd->lines);
    case menu::Command::who: return exec_who();
    case menu::Command::sysrq: return finish_with(broker_.sysrq(cmd->sysrq_key));
    case menu::Command::nmi: return finish_with(broker_.sysrq(0));
    case menu::Command::start:
    case menu::Command::shutdown:
    case menu::Command::reboot:
    case menu::Command::destroy:
      return finish_with(broker_.action(*menu::required_action(cmd->command)));
  }
}

// Ends an exec command with the broker's sentence: stdout and 0 on success, stderr and 1 on a
// refusal or failure.
template <class Answer>
void Connection::finish_with(const Result<Answer>& answer) {
  if (answer && answer->ok) {
    out(answer->text + "\n");
    return finish(0);
  }
  err("xcg: " + text_of(answer) + "\n");
  finish(1);
}

void Connection::exec_log(unsigned lines) {
  auto r = broker_.console_log(lines);
  if (!r || !r->ok) {
    err("xcg: " + text_of(r) + "\n");
    return finish(1);
  }
  std::string text = menu::printable_lines(r->text, "\n");
  if (!text.empty() && text.back() != '\n') text += '\n';
  out(text);
  finish(0);
}

void Connection::exec_who() {
  auto r = broker_.who();
  if (!r) {
    err("xcg: " + r.error().message + "\n");
    return finish(1);
  }
  for (const auto& viewer : r->viewers) out(printable(viewer) + "\n");
  finish(0);
}

void Connection::attach_console(bool from_menu) {
  UniqueFd console;
  auto r = broker_.attach(console);
  if (!r || !r->ok) {
    std::string why = text_of(r);
    if (!from_menu) {
      err("xcg: " + why + "\n");
      return finish(1);
    }
    menu_->attach_failed(why, screen_status());
    send_menu_output();
    return;
  }
  console_ = std::move(console);
  set_nonblocking(console_.get());
  mode_ = Mode::console;
  if (!menu_ || menu_->state() != menu::Menu::State::console)  // the menu prints its own hint
    out("[xcg: console of " + domain_ + (readonly_ ? ", view only" : "") + "; Ctrl-] detaches]\r\n");
  if (ssh_event_add_fd(event_, console_.get(), POLLIN, &Connection::on_console_readable, this) != SSH_OK)
    throw std::runtime_error("ssh_event_add_fd failed");
  console_watched_ = true;
}

void Connection::detach_console() {
  if (!console_) return;
  if (console_watched_) ssh_event_remove_fd(event_, console_.get());
  console_watched_ = false;
  console_.reset();  // the hub sees EOF and records the detach
  console_out_.clear();
}

void Connection::pump_console_input(std::string_view bytes) {
  auto scanned = menu::scan_console_input(bytes);
  // A read-only viewer's keystrokes go nowhere (the hub drops them too); Ctrl-] still detaches.
  size_t room = kMaxPendingInput - std::min(kMaxPendingInput, console_out_.size());
  if (!readonly_) console_out_.append(scanned.to_guest.substr(0, room));
  while (console_ && !console_out_.empty()) {
    ssize_t n = ::send(console_.get(), console_out_.data(), console_out_.size(), MSG_NOSIGNAL);
    if (n > 0) {
      console_out_.erase(0, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;  // EAGAIN: the hub is busy; the rest goes on the next step
    }
  }
  if (scanned.detach) leave_console();
}

int Connection::on_console_readable(socket_t, int, void* userdata) {
  return guarded(0, [&] { return self(userdata)->read_console(), 0; });
}

void Connection::read_console() {
  ssize_t n = 0;
  for (int reads = 0; reads < kReadsPerWakeup; ++reads) {
    if (output_bytes_ >= kMaxPendingOutput) {
      // The customer is not keeping up: stop reading; the hub bounds what waits for us.
      ssh_event_remove_fd(event_, console_.get());
      console_watched_ = false;
      return;
    }
    char buf[kReadChunk];
    n = ::read(console_.get(), buf, sizeof buf);
    if (n <= 0) break;
    out(std::string_view(buf, static_cast<size_t>(n)));
    if (static_cast<size_t>(n) < sizeof buf) return;  // drained
  }
  if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) return;
  // The broker closed our console (hub gone): end like a detach.
  leave_console();
}

// The console ended (Ctrl-] or the hub went away): back to the menu, or the end of an exec.
void Connection::leave_console() {
  detach_console();
  if (exec_console_ || !menu_) return finish(0);
  mode_ = Mode::menu;
  menu_->console_detached(screen_status());
  send_menu_output();
}

// --- output -----------------------------------------------------------------------------------

void Connection::out(std::string_view bytes) {
  if (bytes.empty()) return;
  if (!output_.empty() && !output_.back().is_stderr && output_.back().bytes.size() < kOutputChunk)
    output_.back().bytes.append(bytes);
  else
    output_.push_back({false, std::string(bytes)});
  output_bytes_ += bytes.size();
}

void Connection::err(std::string_view bytes) {
  output_.push_back({true, std::string(bytes)});
  output_bytes_ += bytes.size();
}

void Connection::send_menu_output() {
  if (menu_) out(menu_->take_output());
}

void Connection::flush() {
  if (channel_ == nullptr) return;
  while (!output_.empty()) {
    Chunk& c = output_.front();
    uint32_t window = ssh_channel_window_size(channel_);
    if (window == 0) break;
    uint32_t len = static_cast<uint32_t>(std::min<size_t>(window, c.bytes.size()));
    int n = c.is_stderr ? ssh_channel_write_stderr(channel_, c.bytes.data(), len)
                        : ssh_channel_write(channel_, c.bytes.data(), len);
    if (n == SSH_ERROR) {
      done_ = true;
      return;
    }
    if (n <= 0) break;
    c.bytes.erase(0, static_cast<size_t>(n));
    output_bytes_ -= static_cast<size_t>(n);
    if (c.bytes.empty()) output_.pop_front();
  }
  if (console_ && !console_watched_ && output_bytes_ < kMaxPendingOutput / 2) {
    if (ssh_event_add_fd(event_, console_.get(), POLLIN, &Connection::on_console_readable, this) == SSH_OK)
      console_watched_ = true;
  }
}

void Connection::finish(int exit_status) {
  detach_console();
  mode_ = Mode::finishing;
  exit_status_ = exit_status;
}

void Connection::close() {
  // Give the client a moment to read the exit status and close its side.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (channel_ != nullptr && !closed_by_client_ && ssh_is_connected(session_) &&
         !(ssh_get_status(session_) & (SSH_CLOSED | SSH_CLOSED_ERROR)) &&
         std::chrono::steady_clock::now() < deadline) {
    if (ssh_event_dopoll(event_, 100) == SSH_ERROR) break;
  }
  detach_console();
  if (channel_ != nullptr) {
    // ssh_disconnect frees the channel; make sure no callback of ours outlives it.
    ssh_remove_channel_callbacks(channel_, &channel_cb_);
    channel_ = nullptr;
  }
  ssh_disconnect(session_);
}

}  // namespace xcg::gateway
