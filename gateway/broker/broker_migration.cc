// Simulated live migration between the nodes of a fleet (docs/fleet.md, "Migration"): `xcg ctl
// migrate DOMAIN --to NODE` on the source, and what each node does at its step (MigrationDesk).
#include <sstream>

#include <fmt/format.h>

#include "base/log.h"
#include "base/text.h"
#include "gateway/broker/broker.h"

namespace xcg::gateway {
namespace {

std::vector<std::string> split_words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

}  // namespace

void Broker::open_migrations() {
  MigrationDesk::Hooks hooks{
      [this](const std::string& domain) { return migration_refusal(domain); },
      [this](const std::string& domain) { migrate_in(domain); },
      [this](const std::string& domain, const std::string& to) { return migrate_away(domain, to); }};
  const auto& cluster = *config_->cluster;
  migrations_ =
      std::make_unique<MigrationDesk>(loop_, fleet_->etcd(), cluster.prefix, cluster.node, std::move(hooks));
}

void Broker::control_migrate(const std::string& args, const ControlServer::Reply& reply) {
  auto words = split_words(args);
  if (words.size() != 3 || words[1] != "--to") return reply("error: usage: migrate DOMAIN --to NODE");
  if (auto why = migrate_refusal(words[0], words[2]); !why.empty()) return reply("error: " + why);
  migrations_->migrate(words[0], words[2], [reply](Result<std::string> done) {
    reply(done ? *done : "error: " + done.error().message);
  });
}

// Why this broker cannot send `domain` to `to`, or "".
std::string Broker::migrate_refusal(const std::string& domain, const std::string& to) const {
  if (!config_->cluster || !migrations_)
    return "migrate moves a domain between the nodes of a fleet: this broker is not a node of one";
  if (config_->hypervisor != config::HypervisorKind::sim)
    return "migrate is simulated only: on Xen, move the domain with xl migrate and the registry follows it";
  auto status = hypervisor_->status(domain);
  if (!status) return printable(status.error().message, 200);
  if (to == config_->cluster->node) return fmt::format("{} already runs on {}", domain, printable(to, 64));
  if (auto busy = migrations_->busy(domain)) return *busy;
  if (status->state != xen::DomainState::running)
    return fmt::format("{} is not running here ({})", domain, xen::state_name(status->state));
  return "";
}

// The destination's check: the domain must be in its own YAML and not running here.
std::optional<std::string> Broker::migration_refusal(const std::string& domain) const {
  const std::string& self = config_->cluster->node;
  if (config_->hypervisor != config::HypervisorKind::sim)
    return fmt::format("{} runs Xen: a domain comes to it by xl migrate", self);
  auto status = hypervisor_->status(domain);
  if (!status) return fmt::format("{} does not serve {}: it is not in its configuration", self, domain);
  if (status->state != xen::DomainState::shut_off)
    return fmt::format("{} is {} on {}", domain, xen::state_name(status->state), self);
  return std::nullopt;
}

// The source's step: its viewers are told where the domain went (a front's, quietly, to follow
// it), the guest leaves, and the registry record is left for the destination.
Result<void> Broker::migrate_away(const std::string& domain, const std::string& to) {
  hubs_->leave_quietly(domain);
  if (auto left = hypervisor_->migrate_out(domain); !left) {
    hubs_->sync(domain);
    return left;
  }
  fleet_->let_go(domain);
  hand_over(domain, fmt::format("{} moved to {}", domain, to));
  return {};
}

// No destination is known: a front's session waits for the registry to name one (the same
// node too, when the domain is restored here), a direct one ends with the line.
void Broker::domain_left(const std::string& domain) {
  hubs_->leave_quietly(domain);
  if (fleet_) fleet_->let_go(domain);
  hand_over(domain, fmt::format("{} left this host", domain));
}

void Broker::hand_over(const std::string& domain, const std::string& text) {
  for (auto& [id, s] : sessions_)
    if (s.authorized && !s.revoked && s.domain == domain) revoke(s, text, !s.front_fingerprint.empty());
  log::info("migration: {}", text);
}

void Broker::migrate_in(const std::string& domain) {
  hypervisor_->act_async(domain, xen::Lifecycle::start, [domain](Result<void> started) {
    if (!started) log::error("migration: cannot start {} here: {}", domain, started.error().message);
  });
}

}  // namespace xcg::gateway
