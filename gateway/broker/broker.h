// The broker: the one privileged process. It owns the listeners, the config, the hypervisor
// and a console hub per domain, starts a session process per connection, and answers the
// sessions' typed requests (the monitor of OpenSSH's privilege separation).
//
// Its parts: admission (who may start and finish a login), the monitor (which request, in
// which phase, under which budget), the hub directory (a console hub per domain, following
// the hypervisor), the action queue, the config watch and reload plan, and the control
// socket. This class holds the session table and wires the parts to each other.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/event_loop.h"
#include "config/config.h"
#include "gateway/broker/action_queue.h"
#include "gateway/broker/admission.h"
#include "gateway/broker/audit_log.h"
#include "gateway/broker/config_watch.h"
#include "gateway/broker/control.h"
#include "gateway/broker/fleet_link.h"
#include "gateway/broker/hub_directory.h"
#include "gateway/broker/listener.h"
#include "gateway/broker/metrics.h"
#include "gateway/broker/monitor.h"
#include "gateway/broker/node_directory.h"
#include "gateway/broker/node_links.h"
#include "gateway/broker/reload_plan.h"
#include "gateway/broker/session_record.h"
#include "gateway/broker/session_spawner.h"
#include "gateway/broker/spare_pool.h"
#include "gateway/broker/web_tls.h"
#include "gateway/broker/web_tokens.h"
#include "gateway/cluster/etcd_client.h"
#include "gateway/cluster/key_map_feed.h"
#include "gateway/cluster/migration_desk.h"
#include "gateway/ipc/ipc.h"
#include "xen/hypervisor.h"

namespace xcg::gateway {

struct BrokerOptions {
  std::string self_exe = "/proc/self/exe";  // what the simulated hypervisor's guests run
  // The session program (xcg-session), exec'd for each connection: an absolute path. Tests
  // may name a fake session that speaks the IPC directly.
  std::string session_program;
  // xcg-web, exec'd for each browser console connection when the config has `web:`.
  std::string web_program;
  // The operator's control socket (`xcg ctl`); empty = none.
  std::string control_socket = "/run/xcg/control.sock";
  // Config files are watched and reloaded automatically on change (and always on SIGHUP).
  bool watch_config = true;
};

// What the broker is given rather than makes.
struct BrokerParts {
  std::function<std::unique_ptr<xen::Hypervisor>(EventLoop&)> make_hypervisor;
  std::vector<Listener> listeners;  // SSH and web, each with its kind
  std::unique_ptr<SessionSpawner> spawner;
  std::unique_ptr<SessionSpawner> web_spawner;  // xcg-web; null without `web:`
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };
};

// The real ones, from the config: the Xen or simulated hypervisor, the configured listeners
// (bound here), the xcg-session and xcg-web programs. Throws with one line on failure.
BrokerParts real_broker_parts(const std::shared_ptr<const config::Config>& config,
                              const BrokerOptions& options);

class Broker : private RequestHandler {
 public:
  Broker(std::shared_ptr<const config::Config> config, BrokerOptions options, BrokerParts parts);  // throws
  ~Broker();

  // Serves until SIGTERM or SIGINT; returns the exit code.
  int run();

 private:
  void prepare_sandbox();
  // Copies the config's per-session limits into hello_, for sessions that start from now on.
  void take_session_limits();
  void open_signals();
  void watch_signals();
  void on_signal();
  // Stops the loop; a fleet's node first leaves the fleet, for at most kLeaveTimeout.
  void shut_down();
  void watch_listener(const Listener& l);
  void on_accept(int listen_fd, ListenerKind kind);
  void accept_one(UniqueFd tcp, ListenerKind kind);
  void log_drop(const std::string& source, std::string_view why);
  void spawn_session(UniqueFd tcp, std::string remote, std::string source, ListenerKind kind);
  // A parked spare for an SSH connection, else a session exec'd for it; the connection is
  // passed with the hello (`pass`) when it is a spare.
  Result<SpawnedSession> start_session(UniqueFd& tcp, ListenerKind kind, UniqueFd& pass);
  // What xcg-web is told first: the session's hello and the browser console's settings.
  ipc::Hello web_hello(ListenerKind kind, bool trust_forwarded_for) const;
  // Reads the TLS pair (at start and at each reload); a reload keeps the old one on failure.
  void load_web_tls();
  // With `cluster:`: etcd, and on a node the registry following its domains (broker_fleet.cc).
  void start_fleet();
  void watch_session(SessionRecord& s);
  void set_authorized(SessionRecord& s, const std::string& domain);
  void forget(SessionRecord& s);
  void drop_session(uint64_t id);
  void on_session_exit(uint64_t id);
  void on_session_message(uint64_t id);
  void audit(const SessionRecord& s, std::string event,
             std::vector<std::pair<std::string, std::string>> extra = {});

  // The monitor's handlers (broker_requests.cc): each answers one request type.
  void on(SessionRecord& s, const ipc::LogRecord& r) override;
  void on(SessionRecord& s, const ipc::AuthorizeReq& r) override;
  void on(SessionRecord& s, const ipc::StatusReq& r) override;
  void on(SessionRecord& s, const ipc::ActionReq& r) override;
  void on(SessionRecord& s, const ipc::AttachReq& r) override;
  void on(SessionRecord& s, const ipc::LogReq& r) override;
  void on(SessionRecord& s, const ipc::WhoReq& r) override;
  void on(SessionRecord& s, const ipc::SysrqReq& r) override;
  void on(SessionRecord& s, const ipc::WebAuthorizeReq& r) override;
  void on(SessionRecord& s, const ipc::WeblinkReq& r) override;
  void on(SessionRecord& s, const ipc::NodeConnectReq& r) override;
  void on(SessionRecord& s, const ipc::MetricsReq& r) override;
  void reply(SessionRecord& s, const ipc::Message& answer) override;
  void cut_off(SessionRecord& s, std::string_view why) override;

  void on_receive_error(SessionRecord& s, const Error& e);
  void send(SessionRecord& s, const ipc::Message& answer, int pass_fd = -1);
  void report_dropped_log_records(SessionRecord& s);
  void audit_refused_offers(SessionRecord& s);
  // What a session's requests left to write when it ends.
  void settle_requests(SessionRecord& s);
  ipc::Message answer_authorize(SessionRecord& s, const ipc::AuthorizeReq& req);
  ipc::AuthorizeAns refuse_authorize(SessionRecord& s, const ipc::AuthorizeReq& req,
                                     const std::string& fingerprint);
  // A front's login for a customer (front_login.h).
  ipc::Message answer_front_authorize(SessionRecord& s, const ipc::AuthorizeReq& req,
                                      const config::PublicKey& front_key);
  ipc::AuthorizeAns grant_answer(const config::Domain& domain, const std::string& fingerprint,
                                 bool readonly) const;
  // Browser console logins and links (broker_web.cc).
  ipc::Message answer_web_authorize(SessionRecord& s, const ipc::WebAuthorizeReq& req);
  Result<void> web_login_refusal(SessionRecord& s, const Grant& grant, const std::string& forwarded_for);
  void accept_web_login(SessionRecord& s, const Grant& grant, const ipc::WebAuthorizeReq& req);
  // A one-time link to `domain`'s console: public_url + "/#" + token.
  Result<std::string> mint_link(const std::string& domain, bool readonly, std::chrono::seconds ttl,
                                const std::string& issuer);
  std::string control_weblink(const std::string& args);
  // A front's relay to the node (broker_front.cc).
  void open_node_links();
  static constexpr unsigned kMaxMovesFollowed = 16;
  bool may_connect_node(const SessionRecord& s, const ipc::NodeConnectReq& req) const;
  void answer_node_connect(uint64_t session_id, AuditEvent record, const ipc::NodeConnectAns& answer,
                           UniqueFd node, int64_t revision);
  // `readonly`: narrower than the key, for a front's read-only login.
  void accept_login(SessionRecord& s, const config::Domain& domain, const std::string& fingerprint,
                    const std::string& blob, bool readonly = false);
  ipc::Message answer_attach(SessionRecord& s, UniqueFd& pass);
  // Lifecycle actions and SysRq answer later, when the hypervisor is done; meanwhile the
  // session's further actions are refused.
  std::string action_refusal(const SessionRecord& s, const std::string& what, config::Action needed) const;
  using Act = std::function<void(xen::Hypervisor::ActDone)>;
  using AnswerFor = std::function<ipc::Message(const Result<void>&)>;
  // Queues `act` (actions_); once it is done, audits the action `name` with its result and
  // sends `answer`'s message.
  void run_action(SessionRecord& s, const std::string& name, Act act, AnswerFor answer);
  void send_answer(uint64_t session_id, const ipc::Message& answer);

  // Operator side (broker_reload.cc, broker_control.cc).
  struct ReloadResult {
    bool ok = false;
    std::string text;  // what changed, or every problem found
  };
  static constexpr auto kRevokeGrace = std::chrono::milliseconds(500);  // revoke, then SIGKILL
  static constexpr auto kLeaveTimeout = std::chrono::milliseconds(1000);
  ReloadResult reload(std::string_view trigger);
  ReloadResult apply_config(std::string_view trigger);
  // Over every session, or only those of `only`'s domains.
  unsigned apply_rights(const DomainKeys* only = nullptr);
  std::string apply_domain_changes();
  void narrow_rights(SessionRecord& s, const RightsChange& change);
  // `handover`: the domain migrated away and a front relays the session (ipc::Revoke).
  void revoke(SessionRecord& s, const std::string& text, bool handover = false);
  // The key map from etcd with `cluster:` (broker_cluster.cc).
  void start_key_map();
  void on_key_map(const KeyMap& map);
  void on_key_change(const KeyMapChange& change);
  // The config the files say, with the key map's keys when there is `cluster:`.
  std::shared_ptr<const config::Config> effective(std::shared_ptr<const config::Config> from_files);
  void answer_control(const std::string& request, const ControlServer::Reply& reply);
  std::string handle_control(const std::string& request);
  // Simulated live migration (broker_migration.cc).
  void open_migrations();
  void control_migrate(const std::string& args, const ControlServer::Reply& reply);
  std::string migrate_refusal(const std::string& domain, const std::string& to) const;
  std::optional<std::string> migration_refusal(const std::string& domain) const;
  Result<void> migrate_away(const std::string& domain, const std::string& to);
  void migrate_in(const std::string& domain);
  // On Xen, `xl save` or `xl migrate` took the domain off this host (xen::Hypervisor::DomainLeft).
  void domain_left(const std::string& domain);
  // The domain's sessions end with `text`; a front's, quietly, for it to follow the domain.
  void hand_over(const std::string& domain, const std::string& text);
  std::string list_sessions() const;
  std::string status_report() const;
  std::string cluster_view() const;  // `xcg ctl cluster` (cluster_report.h)
  std::string kick(const std::string& target);
  // The metrics (broker_metrics.cc): Prometheus text, for a metrics session and `xcg ctl metrics`.
  std::string metrics_text() const;
  void write_session_metrics(MetricsWriter& out) const;
  void write_login_metrics(MetricsWriter& out) const;
  void write_console_metrics(MetricsWriter& out) const;
  void write_fleet_metrics(MetricsWriter& out) const;
  void write_front_metrics(MetricsWriter& out, const RegistryView& view) const;
  // A connection that ends without logging in after a refused attempt.
  void count_login_failure(const SessionRecord& s);

  EventLoop loop_;
  std::shared_ptr<const config::Config> config_;
  BrokerOptions options_;
  BrokerParts parts_;
  AuditLog audit_;
  std::vector<std::string> host_keys_pem_;
  std::optional<WebTls> web_tls_;  // with `web:` only
  std::unique_ptr<WebTokens> web_tokens_;
  std::unique_ptr<xen::Hypervisor> hypervisor_;
  std::unique_ptr<FleetLink> fleet_;  // with `cluster:` only; outlives hubs_, which tells it
  std::unique_ptr<HubDirectory> hubs_;
  std::unique_ptr<MigrationDesk> migrations_;  // a node's in a fleet; on fleet_'s client
  std::unique_ptr<NodeDirectory> nodes_;       // a front's only
  std::unique_ptr<NodeLinks> node_links_;      // with nodes_
  ActionQueue actions_{[this] { return size_t{config_->limits.max_actions}; }};
  std::mt19937 rng_{std::random_device{}()};
  Admission admission_;
  BrokerCounters counters_;
  std::map<uint64_t, SessionRecord> sessions_;
  std::unique_ptr<SparePool> spares_;  // xcg-session processes parked for the next connections
  uint64_t next_session_id_ = 1;
  std::chrono::steady_clock::time_point last_drop_log_{};
  ipc::Hello hello_;  // what every session is told first
  UniqueFd signal_fd_;
  EventLoop::Timer leaving_;  // set once a stop has begun leaving the fleet
  std::unique_ptr<ControlServer> control_;
  std::unique_ptr<ConfigWatch> config_watch_;
  // With `cluster:`: the files' config (config_ is it with etcd's keys), and the key map
  // (through fleet_'s client, declared before it so that it outlives the feed).
  std::shared_ptr<const config::Config> file_config_;
  std::unique_ptr<KeyMapFeed> key_feed_;
  DomainKeys etcd_keys_;
  // config_ itself, which a change of the key map changes in place (no one else holds it).
  std::shared_ptr<config::Config> keyed_;
  size_t keys_here_ = 0;  // in keyed_'s domains
  std::chrono::system_clock::time_point started_ = std::chrono::system_clock::now();
  int exit_code_ = 0;
};

}  // namespace xcg::gateway
