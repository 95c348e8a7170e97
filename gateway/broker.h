// The broker: the one privileged process. It owns the listeners, the config, the hypervisor
// and a console hub per domain, forks a session process per connection, and answers the
// sessions' typed requests (the monitor of OpenSSH's privilege separation).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <random>
#include <memory>
#include <string>
#include <vector>

#include "base/event_loop.h"
#include "config/config.h"
#include "gateway/audit_log.h"
#include "gateway/console_hub.h"
#include "gateway/ipc.h"
#include "gateway/listener.h"
#include "xen/hypervisor.h"

namespace xcg::gateway {

struct BrokerOptions {
  std::string self_exe = "/proc/self/exe";  // what session processes and guests run
  // Tests only: run this program as the session process instead of `self_exe session`
  // (a fake session that speaks the IPC directly).
  std::string session_program;
};

class Broker {
 public:
  Broker(std::shared_ptr<const config::Config> config, BrokerOptions options);  // throws
  ~Broker();

  // Serves until SIGTERM or SIGINT; returns the exit code.
  int run();

 private:
  enum class Phase { preauth, authorized };
  struct Session {
    uint64_t id = 0;
    pid_t pid = -1;
    UniqueFd pidfd;
    UniqueFd ipc;
    std::string remote;
    std::string source;       // the remote IP address, for per-source limits
    Phase phase = Phase::preauth;
    std::string domain;       // set once authorized; every later request is for this domain
    std::string fingerprint;
    int auth_requests = 0;
    EventLoop::TimerId grace_timer = 0;
  };

  void prepare_sandbox();
  void open_signals();
  void on_signal();
  void on_accept(int listen_fd);
  bool admit(const std::string& source);
  void spawn_session(UniqueFd tcp, std::string remote, std::string source);
  void set_authorized(Session& s, const std::string& domain);
  void forget(Session& s);
  void on_session_exit(uint64_t id);
  void on_session_message(uint64_t id);
  void cut_off(Session& s, std::string_view why);
  void audit(const Session& s, std::string event,
             std::vector<std::pair<std::string, std::string>> extra = {});

  // Request handlers (broker_requests.cc). Each returns the answer to send.
  ipc::Message answer_authorize(Session& s, const ipc::AuthorizeReq& req);
  ipc::Message answer_status(Session& s);
  ipc::Message answer_action(Session& s, const ipc::ActionReq& req);
  ipc::Message answer_attach(Session& s, UniqueFd& pass);
  bool permitted(const Session& s, ipc::Type t) const;

  void sync_hub(const std::string& domain);

  EventLoop loop_;
  std::shared_ptr<const config::Config> config_;
  BrokerOptions options_;
  AuditLog audit_;
  std::vector<std::string> host_keys_pem_;
  std::vector<Listener> listeners_;
  std::unique_ptr<xen::Hypervisor> hypervisor_;
  std::map<std::string, std::unique_ptr<ConsoleHub>> hubs_;
  std::map<std::string, std::optional<uint32_t>> last_domid_;
  std::map<uint64_t, Session> sessions_;
  uint64_t next_session_id_ = 1;
  unsigned preauth_count_ = 0;
  std::map<std::string, unsigned> preauth_by_source_;
  std::map<std::string, unsigned> sessions_by_domain_;
  std::mt19937 rng_{std::random_device{}()};
  std::chrono::steady_clock::time_point last_drop_log_{};
  std::vector<std::string> session_env_;
  std::vector<char*> session_envp_;
  ipc::Hello hello_;  // what every session is told first
  UniqueFd signal_fd_;
  int exit_code_ = 0;
};

}  // namespace xcg::gateway
