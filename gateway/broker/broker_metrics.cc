// The broker's metrics (docs/metrics.md): asked for by a metrics session (xcg-web serving the
// Prometheus endpoint) or by `xcg ctl metrics`, rendered from the counters and the state.
#include "base/log.h"
#include "gateway/broker/broker.h"

namespace xcg::gateway {
namespace {

constexpr std::array<std::string_view, BrokerCounters::kKinds> kKindNames{"ssh", "web"};

}  // namespace

void Broker::on(SessionRecord& s, const ipc::MetricsReq&) {
  ++counters_.scrapes;
  log::debug("session {} ({}): metrics scraped", s.pid, s.remote);
  reply(s, ipc::MetricsAns{metrics_text()});
}

void Broker::count_login_failure(const SessionRecord& s) {
  if (!s.refused || s.kind == SessionKind::metrics) return;
  ++counters_.login_failures.at(static_cast<size_t>(s.kind)).at(static_cast<size_t>(*s.refused));
}

std::string Broker::metrics_text() const {
  MetricsWriter out;
  write_session_metrics(out);
  write_login_metrics(out);
  write_console_metrics(out);
  out.counter("xcg_reloads_total", "Config reloads, by result (failed: the previous config kept running).");
  out.sample({{"result", "ok"}}, counters_.reloads_ok);
  out.sample({{"result", "failed"}}, counters_.reloads_failed);
  out.counter("xcg_metrics_scrapes_total", "Requests for these metrics through the metrics listeners.");
  out.sample(counters_.scrapes);
  write_fleet_metrics(out);
  return out.text();
}

void Broker::write_session_metrics(MetricsWriter& out) const {
  std::array<uint64_t, BrokerCounters::kKinds> logged_in{};
  uint64_t logging_in = 0;
  for (const auto& [id, s] : sessions_) {
    if (s.kind == SessionKind::metrics) continue;
    if (s.authorized) ++logged_in.at(static_cast<size_t>(s.kind));
    else ++logging_in;
  }
  out.gauge("xcg_sessions", "Logged-in sessions, by kind (ssh, web: the browser console).");
  for (size_t k = 0; k < kKindNames.size(); ++k) out.sample({{"kind", kKindNames[k]}}, logged_in[k]);
  out.gauge("xcg_sessions_logging_in", "Connections that have not logged in yet.");
  out.sample(logging_in);
  out.gauge("xcg_sessions_spare",
            "xcg-session processes exec'd ahead of time, parked until a connection is handed to one.");
  out.sample(spares_->parked());
  out.gauge("xcg_console_viewers", "Viewers attached to the domains' consoles.");
  out.sample(hubs_->viewer_count());
}

void Broker::write_login_metrics(MetricsWriter& out) const {
  out.counter("xcg_logins_total", "Logins, by kind.");
  for (size_t k = 0; k < kKindNames.size(); ++k) out.sample({{"kind", kKindNames[k]}}, counters_.logins[k]);
  out.counter("xcg_login_failures_total",
              "Connections that ended without logging in after a refused attempt, by kind and by the reason "
              "of the last refusal.");
  for (size_t k = 0; k < kKindNames.size(); ++k)
    for (LoginFailure f : kLoginFailures)
      out.sample({{"kind", kKindNames[k]}, {"reason", login_failure_name(f)}},
                 counters_.login_failures[k][static_cast<size_t>(f)]);
}

void Broker::write_console_metrics(MetricsWriter& out) const {
  out.counter(
      "xcg_console_bytes_total",
      "Console bytes relayed: to_viewers (console output sent to viewers), to_console (viewers' input "
      "written to the console).");
  out.sample({{"direction", "to_viewers"}}, hubs_->traffic().to_viewers);
  out.sample({{"direction", "to_console"}}, hubs_->traffic().to_console);
}

// With `cluster:` only.
void Broker::write_fleet_metrics(MetricsWriter& out) const {
  if (!fleet_) return;
  out.gauge("xcg_etcd_up", "1 if etcd answered the last request and no endpoint failed since, else 0.");
  out.sample(fleet_->etcd().reachable() ? 1 : 0);
  out.gauge("xcg_etcd_key_map_revision", "The etcd revision the key map is as of (0: not read yet).");
  out.sample(key_feed_ ? static_cast<uint64_t>(key_feed_->revision()) : 0);
  out.gauge("xcg_etcd_watch_lag_seconds",
            "How long the key map's watch has been behind the store: since a probe first found a revision it "
            "had not applied (0: caught up).");
  out.sample_seconds(key_feed_ ? key_feed_->watch_lag_seconds() : 0);
  if (const RegistryWriter* writer = fleet_->writer()) {
    out.gauge("xcg_etcd_lease_held", "1 if this node's record is in etcd under a live lease, else 0.");
    out.sample(writer->registered() && writer->lease() != 0 ? 1 : 0);
  }
  if (const RegistryView* view = fleet_->registry()) write_front_metrics(out, *view);
}

void Broker::write_front_metrics(MetricsWriter& out, const RegistryView& view) const {
  out.gauge("xcg_registry_nodes", "Nodes in the fleet's registry, as this front sees it.");
  out.sample(view.nodes().size());
  out.gauge("xcg_registry_domains", "Domains in the fleet's registry, as this front sees it.");
  out.sample(view.domains().size());
  out.counter("xcg_node_relays_total", "Connections to a node for a customer, by result.");
  out.sample({{"result", "ok"}}, counters_.relays_ok);
  out.sample({{"result", "failed"}}, counters_.relays_failed);
}

}  // namespace xcg::gateway
