#include "gateway/broker/admission.h"

#include <algorithm>

namespace xcg::gateway {
namespace {

// Takes one off `key`'s count, and its entry with the last one: a map of every source that
// ever connected would grow without bound.
void count_down(std::map<std::string, unsigned>& counts, const std::string& key) {
  auto it = counts.find(key);
  if (it == counts.end()) return;
  if (--it->second == 0) counts.erase(it);
}

}  // namespace

Admission::Admission(const config::Limits& limits, Percentile percentile)
    : limits_(limits), percentile_(std::move(percentile)) {}

std::optional<std::string_view> Admission::refusal(const std::string& source) {
  auto counted = by_source_.find(source);
  if (counted != by_source_.end() && counted->second >= limits_.max_startups_per_source)
    return "max_startups_per_source";
  if (logging_in_ >= limits_.startups_full) return "max_startups (full)";
  if (logging_in_ >= limits_.startups_begin && random_early_drop()) return "max_startups (random early drop)";
  return std::nullopt;
}

// From startups_rate percent at `begin` up to all at `full`, as OpenSSH's MaxStartups.
bool Admission::random_early_drop() {
  unsigned span = std::max(1u, limits_.startups_full - limits_.startups_begin);
  unsigned p =
      limits_.startups_rate + (100 - limits_.startups_rate) * (logging_in_ - limits_.startups_begin) / span;
  return percentile_() < p;
}

void Admission::login_started(const std::string& source) {
  ++logging_in_;
  ++by_source_[source];
}

void Admission::login_ended(const std::string& source) {
  --logging_in_;
  count_down(by_source_, source);
}

bool Admission::move_login(const std::string& from, const std::string& to) {
  if (from == to) return true;
  auto counted = by_source_.find(to);
  if (counted != by_source_.end() && counted->second >= limits_.max_startups_per_source) return false;
  count_down(by_source_, from);
  ++by_source_[to];
  return true;
}

bool Admission::domain_has_room(const std::string& domain) const {
  auto it = by_domain_.find(domain);
  return it == by_domain_.end() || it->second < limits_.max_sessions_per_domain;
}

void Admission::logged_in(const std::string& source, const std::string& domain) {
  login_ended(source);
  ++by_domain_[domain];
}

void Admission::session_ended(const std::string& domain) { count_down(by_domain_, domain); }

}  // namespace xcg::gateway
