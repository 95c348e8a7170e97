// The key map as a watch keeps it: each etcd key's value as read when it arrived, indexed by
// domain and by key, so that a change yields the domains it touches with their keys now
// rather than the whole map again. The rules are assemble_key_map's: a bad value costs only
// itself, and a key listed under two domains belongs to the first in etcd key order.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "gateway/cluster/etcd_json.h"
#include "gateway/cluster/key_map.h"

namespace xcg {

// What a batch of watch events changed.
struct KeyMapChange {
  DomainKeys domains;                   // each domain touched, with its keys now (an empty list: none left)
  std::vector<KeyMapProblem> problems;  // among the values changed
};

class KeyMapState {
 public:
  explicit KeyMapState(std::string prefix) : prefix_(std::move(prefix)) {}

  // Replaces everything with a snapshot's values; returns the whole map.
  KeyMap reset(const std::vector<KeyValue>& kvs);
  // Applies the events in order.
  KeyMapChange apply(const std::vector<WatchEvent>& events);
  // The whole map (what reset would return for the same values).
  KeyMap whole() const { return assemble_key_map(entries_); }
  // Keys in the map: each counted once, in the domain that holds it.
  size_t key_count() const { return holders_.size(); }

 private:
  using EtcdKeys = std::set<std::string>;
  void put(const KeyValue& kv, std::set<std::string>& touched);
  void erase(const std::string& etcd_key, std::set<std::string>& touched);
  // The domains of every entry holding `blob`: whose keys change when its first holder does.
  void touch_holders(const std::string& blob, std::set<std::string>& touched) const;
  std::vector<config::DomainKey> keys_of(const std::string& domain) const;
  std::optional<KeyMapProblem> problem(const std::string& etcd_key) const;

  std::string prefix_;
  KeyMapEntries entries_;                      // by etcd key
  std::map<std::string, EtcdKeys> by_domain_;  // domain -> its good entries
  std::map<std::string, EtcdKeys> holders_;    // a key's blob -> the good entries holding it
};

}  // namespace xcg
