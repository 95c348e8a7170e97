// The broker: the one privileged process. It owns the listeners, the config, the hypervisor
// and a console hub per domain, forks a session process per connection, and answers the
// sessions' typed requests (the monitor of OpenSSH's privilege separation).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "base/event_loop.h"
#include "config/config.h"
#include "gateway/broker/action_queue.h"
#include "gateway/broker/audit_log.h"
#include "gateway/console/console_hub.h"
#include "gateway/broker/control.h"
#include "gateway/ipc/ipc.h"
#include "gateway/broker/listener.h"
#include "gateway/broker/request_table.h"
#include "xen/hypervisor.h"

namespace xcg::gateway {

struct BrokerOptions {
  std::string self_exe = "/proc/self/exe";  // what the simulated hypervisor's guests run
  // The session program (xcg-session), exec'd for each connection: an absolute path. Tests
  // may name a fake session that speaks the IPC directly.
  std::string session_program;
  // The operator's control socket (`xcg ctl`); empty = none.
  std::string control_socket = "/run/xcg/control.sock";
  // Config files are watched and reloaded automatically on change (and always on SIGHUP).
  bool watch_config = true;
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
    std::string source;       // the remote address's network (source_bucket), for per-source limits
    Phase phase = Phase::preauth;
    std::string domain;       // set once authorized; every later request is for this domain
    std::string fingerprint;
    std::string key_label;    // the key's comment in the config, else its fingerprint
    std::string key_blob;     // to re-check the mapping when the config changes
    std::chrono::system_clock::time_point since = std::chrono::system_clock::now();
    bool revoked = false;
    bool readonly = false;
    int auth_requests = 0;
    // A well-behaved session stops at the max_key_offers and max_auth_tries its hello gave it;
    // the accepted key costs an offer and a signed request on top. Fixed at spawn: a reload
    // must not cut off a login that keeps to the limits it was given.
    int max_auth_requests = 0;
    EventLoop::TimerId grace_timer = 0;
    TokenBucket requests{kRequestBurst, kRequestsPerSecond};  // every request but `log`
    TokenBucket log_records{kLogBurst, kLogLinesPerSecond};
    unsigned dropped_log_records = 0;  // since the last one written
    RefusedOffers refused_offers;      // audited once, when the session ends or logs in
    std::string action_in_flight;  // the one action asked for and not yet answered, if any
  };
  struct RequestHandlers;  // one overload per message type (broker_requests.cc)

  void prepare_sandbox();
  // Copies the config's per-session limits into hello_, for sessions that start from now on.
  void take_session_limits();
  void open_signals();
  void watch_signals();
  void on_signal();
  void watch_listener(int fd, const std::string& address);
  void on_accept(int listen_fd);
  bool admit(const std::string& source);
  void spawn_session(UniqueFd tcp, std::string remote, std::string source);
  void set_authorized(Session& s, const std::string& domain);
  void forget(Session& s);
  void drop_session(uint64_t id);
  void on_session_exit(uint64_t id);
  void on_session_message(uint64_t id);
  void cut_off(Session& s, std::string_view why);
  void audit(const Session& s, std::string event,
             std::vector<std::pair<std::string, std::string>> extra = {});

  // Request dispatch (broker_requests.cc): the phase table, the budget, then a handler.
  static SessionPhase request_phase(const Session& s);
  void on_receive_error(Session& s, const Error& e);
  void dispatch(Session& s, ipc::Received& received);
  void reply(Session& s, const ipc::Message& answer, int pass_fd = -1);
  void write_session_log(Session& s, const ipc::LogRecord& record);
  void report_dropped_log_records(Session& s);
  void handle_authorize(Session& s, const ipc::AuthorizeReq& req);
  void audit_refused_offers(Session& s);
  // What a session's requests left to write when it ends (broker.cc calls it).
  void settle_requests(Session& s);

  // Request handlers (broker_requests.cc). Each returns the answer to send.
  ipc::Message answer_authorize(Session& s, const ipc::AuthorizeReq& req);
  ipc::Message answer_status(Session& s);
  // Lifecycle actions and SysRq answer later, when the hypervisor is done; meanwhile the
  // session's further actions are refused.
  void start_action(Session& s, const ipc::ActionReq& req);
  void answer_sysrq(Session& s, const ipc::SysrqReq& req);
  using Act = std::function<void(xen::Hypervisor::ActDone)>;
  using AnswerFor = std::function<ipc::Message(const Result<void>&)>;
  // Queues `act` (actions_); once it is done, audits the action `name` with its result and
  // sends `answer`'s message.
  void run_action(Session& s, const std::string& name, Act act, AnswerFor answer);
  void send_answer(uint64_t session_id, const ipc::Message& answer);
  ipc::Message answer_attach(Session& s, UniqueFd& pass);
  ipc::Message answer_log(Session& s, const ipc::LogReq& req);
  ipc::Message answer_who(Session& s);

  // Console hubs (broker.cc): one per domain served, from start-up or added by a reload.
  void open_hub(const std::string& domain);
  // Follows the domain's state: attaches the hub to its console, tells viewers what happened.
  void sync_hub(const std::string& domain, bool announce = true);
  // A reboot is under way (asked for, or Xen says so): hold the "not running" notice for a while.
  void expect_reboot(const std::string& domain);
  bool reboot_expected(const std::string& domain) const;
  // The reboot came, failed, or another action followed it.
  void end_reboot_window(const std::string& domain);
  Result<void> add_domain(const config::Domain& d);
  void remove_domain(const std::string& domain);

  // Operator side (broker_admin.cc): reload, revocation, the control socket, config watching.
  struct ReloadResult {
    bool ok = false;
    std::string text;  // what changed, or every problem found
  };
  static constexpr auto kRevokeGrace = std::chrono::milliseconds(500);  // revoke, then SIGKILL
  // How long a domain that went down to reboot may take to come back before viewers are told
  // it is down. Building a domain takes seconds on Xen (tens under emulation).
  static constexpr auto kRebootWindow = std::chrono::seconds(60);
  ReloadResult reload(std::string_view trigger);
  ReloadResult apply_config(std::string_view trigger);
  std::string apply_domain_changes();
  void revoke(Session& s, const std::string& text);
  void narrow_rights(Session& s, const config::Domain& d);
  std::string handle_control(const std::string& request);
  std::string list_sessions() const;
  std::string status_report() const;
  std::string kick(const std::string& target);
  void watch_config_files();
  void on_config_change();

  EventLoop loop_;
  std::shared_ptr<const config::Config> config_;
  BrokerOptions options_;
  AuditLog audit_;
  std::vector<std::string> host_keys_pem_;
  std::vector<Listener> listeners_;
  std::unique_ptr<xen::Hypervisor> hypervisor_;
  std::map<std::string, std::unique_ptr<ConsoleHub>> hubs_;
  ActionQueue actions_{[this] { return size_t{config_->limits.max_actions}; }};
  // Hubs of removed domains, until their revoked sessions are gone (kRevokeGrace).
  std::map<uint64_t, std::unique_ptr<ConsoleHub>> closing_hubs_;
  uint64_t next_closing_hub_ = 1;
  std::map<std::string, std::optional<uint32_t>> last_domid_;
  std::string adding_domain_;  // while the hypervisor is told of it: its notices are quiet
  // Start-up's: every hub has the same, also those of domains a reload adds (a changed
  // `console:` section needs a restart).
  config::ConsoleSettings console_settings_;
  struct RebootWindow {
    std::chrono::steady_clock::time_point until;
    EventLoop::TimerId timer = 0;
  };
  std::map<std::string, RebootWindow> reboot_windows_;
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
  std::unique_ptr<ControlServer> control_;
  UniqueFd inotify_;
  std::set<std::string> watched_names_;  // file and directory names whose changes mean reload
  EventLoop::TimerId reload_timer_ = 0;
  std::chrono::system_clock::time_point started_ = std::chrono::system_clock::now();
  int exit_code_ = 0;
};

}  // namespace xcg::gateway
