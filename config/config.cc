#include "config/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

namespace xcg::config {
namespace {

constexpr std::string_view kActionNames[] = {"console", "start", "shutdown", "reboot", "destroy", "sysrq"};
static_assert(std::size(kActionNames) == std::size(kAllActions));

bool is_name_char(char c, bool first) {
  bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  return alnum || (!first && (c == '_' || c == '.' || c == '-'));
}

std::string join_problems(const std::vector<Problem>& problems) {
  std::string out;
  for (const auto& p : problems) {
    if (!out.empty()) out += '\n';
    out += p.str();
  }
  return out;
}

}  // namespace

std::string_view action_name(Action a) { return kActionNames[static_cast<size_t>(a)]; }

std::optional<Action> parse_action(std::string_view name) {
  for (Action a : kAllActions)
    if (action_name(a) == name) return a;
  return std::nullopt;
}

bool allows(const std::vector<Action>& actions, Action a) {
  return std::find(actions.begin(), actions.end(), a) != actions.end();
}

bool valid_sysrq_key(char key) { return (key >= '0' && key <= '9') || (key >= 'a' && key <= 'z'); }

bool Domain::allows(Action a) const { return config::allows(actions, a); }

const DomainKey* Domain::key_for(std::string_view blob) const {
  for (const auto& k : keys)
    if (k.key.blob == blob) return &k;
  return nullptr;
}

bool valid_domain_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (!is_name_char(name[i], i == 0)) return false;
  return true;
}

std::string Location::str() const { return fmt::format("{}:{}:{}", file, line, column); }

std::string Problem::str() const { return where.str() + ": " + message; }

ConfigError::ConfigError(std::vector<Problem> problems)
    : std::runtime_error(join_problems(problems)), problems_(std::move(problems)) {}

const Domain* Config::domain_for_key(std::string_view blob) const {
  auto owner = domain_by_blob_.find(blob);
  if (owner == domain_by_blob_.end()) return nullptr;
  auto domain = domains.find(owner->second);
  return domain == domains.end() ? nullptr : &domain->second;
}

namespace {

// The domains a front knows: a name and keys; what they allow is the node's to say.
Domain front_domain(const std::string& name, const std::vector<DomainKey>& keys) {
  Domain d{.name = name, .keys = keys};
  d.actions.assign(std::begin(kAllActions), std::end(kAllActions));
  return d;
}

// Only the domain's own entries: another domain may have taken one of its keys in the same
// change, before this one was set.
void forget_keys(std::map<std::string, std::string, std::less<>>& domain_by_blob, const std::string& domain,
                 const std::vector<DomainKey>& keys) {
  for (const auto& k : keys) {
    auto owner = domain_by_blob.find(k.key.blob);
    if (owner != domain_by_blob.end() && owner->second == domain) domain_by_blob.erase(owner);
  }
}

}  // namespace

std::shared_ptr<Config> with_domain_keys(const Config& base,
                                         const std::map<std::string, std::vector<DomainKey>>& keys) {
  auto out = std::make_shared<Config>(base);
  if (base.is_front()) {
    out->domains.clear();
    for (const auto& [name, list] : keys) out->domains.emplace(name, front_domain(name, list));
  } else {
    for (auto& [name, d] : out->domains) {
      auto found = keys.find(name);
      d.keys = found == keys.end() ? std::vector<DomainKey>{} : found->second;
    }
  }
  out->domain_by_blob_.clear();
  for (const auto& [name, d] : out->domains)
    for (const auto& k : d.keys) out->domain_by_blob_.try_emplace(k.key.blob, name);
  return out;
}

void set_domain_keys(Config& config, const std::string& domain, const std::vector<DomainKey>& keys) {
  auto d = config.domains.find(domain);
  if (d != config.domains.end()) forget_keys(config.domain_by_blob_, domain, d->second.keys);
  if (config.is_front()) {
    if (keys.empty()) {
      if (d != config.domains.end()) config.domains.erase(d);
      return;
    }
    if (d == config.domains.end()) d = config.domains.emplace(domain, front_domain(domain, {})).first;
  } else if (d == config.domains.end()) {
    return;  // not a domain of this node
  }
  d->second.keys = keys;
  for (const auto& k : keys) config.domain_by_blob_.insert_or_assign(k.key.blob, domain);
}

const FrontKey* Config::front_for_key(std::string_view blob) const {
  for (const auto& f : fronts)
    if (f.key.blob == blob) return &f;
  return nullptr;
}

}  // namespace xcg::config
