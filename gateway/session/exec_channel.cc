#include "gateway/session/exec_channel.h"

#include <algorithm>

#include "base/log.h"
#include "menu/commands.h"

namespace xcg::gateway {
namespace {

ExecChannel* self(void* userdata) { return static_cast<ExecChannel*>(userdata); }

constexpr std::string_view kActionsCommand = "actions";

}  // namespace

bool front_command_allowed(std::string_view command) {
  if (command == kActionsCommand) return true;
  auto parsed = menu::parse_command(command);
  if (!parsed) return false;
  switch (parsed->command) {
    case menu::Command::status:
    case menu::Command::who:
    case menu::Command::log:
    case menu::Command::start:
    case menu::Command::shutdown:
    case menu::Command::reboot:
    case menu::Command::destroy:
    case menu::Command::sysrq:
    case menu::Command::nmi: return true;
    case menu::Command::help:
    case menu::Command::console:
    case menu::Command::weblink: return false;
  }
  return false;
}

std::string offered_actions(const Customer& customer) {
  std::string out;
  if (customer.readonly) return out;
  for (auto a : customer.actions) out += (out.empty() ? "" : " ") + std::string(config::action_name(a));
  return out;
}

Result<size_t> write_channel(ssh_channel channel, Stream stream, std::string_view bytes) {
  uint32_t window = ssh_channel_window_size(channel);
  uint32_t len = static_cast<uint32_t>(std::min<size_t>(window, bytes.size()));
  if (len == 0) return 0;
  int n = stream == Stream::err ? ssh_channel_write_stderr(channel, bytes.data(), len)
                                : ssh_channel_write(channel, bytes.data(), len);
  if (n == SSH_ERROR) return fail(Errc::peer_closed, "the channel is closed");
  return static_cast<size_t>(std::max(n, 0));
}

// Unset callbacks (pty, shell, x11, env, ...) make libssh refuse those requests.
ExecChannel::ExecChannel(ssh_session session, BrokerClient& broker, const Customer& customer)
    : broker_(broker), customer_(customer), channel_(ssh_channel_new(session)) {
  if (channel_ == nullptr) return;
  callbacks_.userdata = this;
  callbacks_.channel_exec_request_function = [](ssh_session, ssh_channel, const char* command,
                                                void* ud) -> int {
    try {
      return self(ud)->on_exec(command);
    } catch (const std::exception& e) {  // never into C
      log::error("session: {}", e.what());
      return 1;
    }
  };
  callbacks_.channel_data_function = [](ssh_session, ssh_channel, void*, uint32_t len, int, void*) -> int {
    return static_cast<int>(len);  // the commands read no input
  };
  callbacks_.channel_close_function = [](ssh_session, ssh_channel, void* ud) {
    self(ud)->closed_by_client_ = true;
  };
  ssh_callbacks_init(&callbacks_);
  ssh_set_channel_callbacks(channel_, &callbacks_);
}

ExecChannel::~ExecChannel() {
  core_.reset();  // before the channel it writes to goes
  if (channel_ == nullptr) return;
  ssh_remove_channel_callbacks(channel_, &callbacks_);
  ssh_channel_free(channel_);
}

int ExecChannel::on_exec(const char* command) {
  std::string_view text = command ? command : "";
  if (core_ || ended_ || !front_command_allowed(text)) {
    log::info("refused the front's command channel request '{}'", text.substr(0, 40));
    return 1;
  }
  if (text == kActionsCommand) {
    std::string line = offered_actions(customer_) + "\n";
    (void)write_channel(channel_, Stream::out, line);  // far below the window a new channel has
    end(0, "");
    return 0;
  }
  core_ = std::make_unique<CustomerSession>(*this, broker_, customer_, 0);
  return core_->start_exec(text) ? 0 : 1;
}

// A narrowing of the login's rights is the console's session's to take (it steps first): this
// core would take it away. The broker checks the rights of each command anyway.
void ExecChannel::step(std::chrono::steady_clock::time_point now) {
  if (core_ && !ended_ && !broker_.narrowed_pending()) core_->step(now);
}

Result<size_t> ExecChannel::write(Stream stream, std::string_view bytes) {
  return write_channel(channel_, stream, bytes);
}

void ExecChannel::end(int exit_status, std::string_view) {
  (void)ssh_channel_request_send_exit_status(channel_, exit_status);  // fails only if the front is gone
  (void)ssh_channel_send_eof(channel_);
  (void)ssh_channel_close(channel_);
  ended_ = true;
}

}  // namespace xcg::gateway
