#include "gateway/cluster/key_map_state.h"

#include <fmt/format.h>

namespace xcg {

KeyMap KeyMapState::reset(const std::vector<KeyValue>& kvs) {
  entries_.clear();
  by_domain_.clear();
  holders_.clear();
  std::set<std::string> touched;
  for (const auto& kv : kvs) put(kv, touched);
  return whole();
}

KeyMapChange KeyMapState::apply(const std::vector<WatchEvent>& events) {
  std::set<std::string> touched;
  std::set<std::string> changed;
  for (const auto& e : events) {
    changed.insert(e.kv.key);
    erase(e.kv.key, touched);
    if (e.type != WatchEvent::Type::del) put(e.kv, touched);
  }
  KeyMapChange out;
  for (const auto& domain : touched) out.domains.emplace(domain, keys_of(domain));
  for (const auto& etcd_key : changed)
    if (auto p = problem(etcd_key)) out.problems.push_back(std::move(*p));
  return out;
}

void KeyMapState::put(const KeyValue& kv, std::set<std::string>& touched) {
  auto [it, fresh] = entries_.insert_or_assign(kv.key, read_key_entry(prefix_, kv));
  if (!it->second) return;
  const KeyMapEntry& entry = *it->second;
  by_domain_[entry.domain].insert(kv.key);
  holders_[entry.key.key.blob].insert(kv.key);
  touch_holders(entry.key.key.blob, touched);
}

void KeyMapState::erase(const std::string& etcd_key, std::set<std::string>& touched) {
  auto it = entries_.find(etcd_key);
  if (it == entries_.end()) return;
  if (it->second) {
    const KeyMapEntry& entry = *it->second;
    touch_holders(entry.key.key.blob, touched);
    auto domain = by_domain_.find(entry.domain);
    domain->second.erase(etcd_key);
    if (domain->second.empty()) by_domain_.erase(domain);
    auto holders = holders_.find(entry.key.key.blob);
    holders->second.erase(etcd_key);
    if (holders->second.empty()) holders_.erase(holders);
  }
  entries_.erase(it);
}

void KeyMapState::touch_holders(const std::string& blob, std::set<std::string>& touched) const {
  auto holders = holders_.find(blob);
  if (holders == holders_.end()) return;
  for (const auto& etcd_key : holders->second) touched.insert(entries_.at(etcd_key)->domain);
}

std::vector<config::DomainKey> KeyMapState::keys_of(const std::string& domain) const {
  std::vector<config::DomainKey> keys;
  auto found = by_domain_.find(domain);
  if (found == by_domain_.end()) return keys;
  for (const auto& etcd_key : found->second) {
    const KeyMapEntry& entry = *entries_.at(etcd_key);
    if (*holders_.at(entry.key.key.blob).begin() == etcd_key) keys.push_back(entry.key);
  }
  return keys;
}

// What assemble_key_map says of this value, if anything.
std::optional<KeyMapProblem> KeyMapState::problem(const std::string& etcd_key) const {
  auto it = entries_.find(etcd_key);
  if (it == entries_.end()) return std::nullopt;
  if (!it->second) return KeyMapProblem{etcd_key, it->second.error().message};
  const std::string& owner = *holders_.at(it->second->key.key.blob).begin();
  if (owner == etcd_key) return std::nullopt;
  return KeyMapProblem{etcd_key,
                       fmt::format("the key is already a key of domain '{}'", entries_.at(owner)->domain)};
}

}  // namespace xcg
