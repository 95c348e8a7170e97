// Who may start a login, and who may finish one: OpenSSH's MaxStartups (random early drop of
// new connections between `begin` and `full` unauthenticated ones), a cap per source network,
// and a cap on the sessions logged in to one domain. Only counting and deciding: the broker
// accepts, spawns and logs.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace xcg::gateway {

class Admission {
 public:
  // Uniform in [0, 99]: the dice of the random early drop.
  using Percentile = std::function<unsigned()>;

  Admission(const config::Limits& limits, Percentile percentile);
  // A reload: counts stay, the new limits apply to the next decisions.
  void set_limits(const config::Limits& limits) { limits_ = limits; }

  // Why a new connection from `source` is dropped; nullopt to admit it.
  std::optional<std::string_view> refusal(const std::string& source);
  // A login that was admitted and started: it counts until it logs in or ends.
  void login_started(const std::string& source);
  void login_ended(const std::string& source);  // without logging in
  // A login under way turns out to come from `to` (a trusted proxy's client): it counts there
  // from now on, unless `to` is at its cap. Returns whether it moved.
  bool move_login(const std::string& from, const std::string& to);
  // Whether `domain` has room for one more logged-in session.
  bool domain_has_room(const std::string& domain) const;
  void logged_in(const std::string& source, const std::string& domain);
  void session_ended(const std::string& domain);

  unsigned logging_in() const { return logging_in_; }
  // Entries kept: a source or domain with nothing counted has none.
  size_t sources_counted() const { return by_source_.size(); }
  size_t domains_counted() const { return by_domain_.size(); }

 private:
  bool random_early_drop();

  config::Limits limits_;
  Percentile percentile_;
  unsigned logging_in_ = 0;
  std::map<std::string, unsigned> by_source_;  // logins under way, per source network
  std::map<std::string, unsigned> by_domain_;  // logged-in sessions, per domain
};

}  // namespace xcg::gateway
