// On a node, a further session channel a fleet's front opens beside the console on the same
// connection (docs/fleet.md, "Front to node"): one exec command that answers and ends, run by a
// CustomerSession with the login's rights, or `actions` (what the front's browser page may
// offer). Any other request on it is refused. The SshConnection allows a few at a time, and only
// to a front's login.
#pragma once

#include <memory>
#include <string_view>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "gateway/session/broker_client.h"
#include "gateway/session/customer_session.h"
#include "gateway/session/terminal.h"

namespace xcg::gateway {

inline constexpr size_t kMaxFrontCommandChannels = 4;  // open at once beside the first channel

// The exec commands a front may run on a further channel: status, who, log [-n N], start, shutdown,
// reboot, destroy, sysrq K, nmi and actions.
bool front_command_allowed(std::string_view command);

// The actions a front's page may offer for this login: "ACTION..." as the config names them,
// nothing for a read-only one.
std::string offered_actions(const Customer& customer);

class ExecChannel final : public Terminal {
 public:
  ExecChannel(ssh_session session, BrokerClient& broker, const Customer& customer);
  ~ExecChannel() override;
  ExecChannel(const ExecChannel&) = delete;
  ExecChannel& operator=(const ExecChannel&) = delete;

  ssh_channel channel() const { return channel_; }  // nullptr if libssh could not make one
  void step(std::chrono::steady_clock::time_point now);
  // Answered, or the front closed it: it may go.
  bool over() const { return ended_ || closed_by_client_ || (core_ && core_->over()); }

  Result<size_t> write(Stream stream, std::string_view bytes) override;
  void end(int exit_status, std::string_view reason) override;

 private:
  int on_exec(const char* command);

  BrokerClient& broker_;
  Customer customer_;
  ssh_channel channel_ = nullptr;
  ssh_channel_callbacks_struct callbacks_{};
  std::unique_ptr<CustomerSession> core_;
  bool closed_by_client_ = false;
  bool ended_ = false;
};

// Writes what the channel's window takes of `bytes`.
Result<size_t> write_channel(ssh_channel channel, Stream stream, std::string_view bytes);

}  // namespace xcg::gateway
