// The control socket's commands (`xcg ctl`): what runs, and the operator's levers on it.
#include <signal.h>

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/text.h"
#include "gateway/broker/broker.h"
#include "gateway/broker/cluster_report.h"

namespace xcg::gateway {

// Only a migration answers later: once its destination has.
void Broker::answer_control(const std::string& request, const ControlServer::Reply& reply) {
  if (request.starts_with("migrate ")) return control_migrate(request.substr(8), reply);
  reply(handle_control(request));
}

std::string Broker::handle_control(const std::string& request) {
  std::string cmd = request.substr(0, request.find(' '));
  std::string arg = request.size() > cmd.size() ? request.substr(cmd.size() + 1) : "";
  if (cmd == "sessions" && arg.empty()) return list_sessions();
  if (cmd == "status" && arg.empty()) return status_report();
  if (cmd == "cluster" && arg.empty()) return cluster_view();
  if (cmd == "kick" && !arg.empty()) return kick(arg);
  if (cmd == "weblink") return control_weblink(arg);
  if (cmd == "metrics" && arg.empty()) return metrics_text();
  if (cmd == "reload" && arg.empty()) {
    auto r = reload("xcg ctl reload");
    return r.ok ? r.text : "error: config not applied; the previous one keeps running:\n" + r.text;
  }
  return "error: unknown request; use sessions, status, cluster, kick DOMAIN|SESSION, reload, metrics, "
         "weblink DOMAIN [--readonly] [--ttl S], migrate DOMAIN --to NODE";
}

std::string Broker::list_sessions() const {
  std::string out = "ID     PID      DOMAIN           REMOTE                   SINCE                 KEY\n";
  for (const auto& [id, s] : sessions_) {
    std::string domain = s.authorized ? s.domain : "(logging in)";
    out += fmt::format("{:<6} {:<8} {:<16} {:<24} {:<21} {}{}\n", id, s.pid, domain, s.remote,
                       utc_timestamp(s.since), s.key_label, s.readonly ? " (read-only)" : "");
  }
  return out;
}

std::string Broker::status_report() const {
  unsigned authorized = 0;
  for (const auto& [id, s] : sessions_) authorized += s.authorized;
  std::string out =
      fmt::format("xcg serving {} since {}\nsessions: {} logged in, {} logging in, {} spare (parked: {})\n",
                  config_->path, utc_timestamp(started_), authorized, admission_.logging_in(),
                  spares_->parked(), fmt::join(spares_->pids(), " "));
  for (const auto& name : hypervisor_->domains()) {
    auto st = hypervisor_->status(name);
    const ConsoleHub* hub = hubs_->find(name);
    size_t viewers = hub == nullptr ? 0 : hub->viewer_count();
    out += fmt::format("{}; {} viewers\n", st ? xen::format_status(*st) : name + ": " + st.error().message,
                       viewers);
  }
  return out;
}

std::string Broker::cluster_view() const {
  if (!config_->cluster || !fleet_) return "no cluster: section; this broker serves its own domains alone\n";
  return cluster_report(*config_->cluster, *fleet_, key_feed_.get(), etcd_keys_);
}

std::string Broker::kick(const std::string& target) {
  unsigned n = 0;
  bool numeric = !target.empty() && std::all_of(target.begin(), target.end(), ::isdigit);
  for (auto& [id, s] : sessions_) {
    bool match = numeric ? std::to_string(id) == target : (s.authorized && s.domain == target);
    if (!match || s.revoked) continue;
    if (s.authorized) revoke(s, "disconnected by the operator");
    else ::kill(s.pid, SIGKILL);
    ++n;
  }
  if (n == 0) return fmt::format("error: no session matches '{}'", target);
  return fmt::format("ended {} session{}", n, n == 1 ? "" : "s");
}

}  // namespace xcg::gateway
