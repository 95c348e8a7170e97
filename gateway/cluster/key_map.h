// The key map in etcd (docs/fleet.md): `keys/<domain>/<fingerprint>` under the prefix, each
// value {"key": "<OpenSSH line>", "readonly": bool}. Pure translations both ways: domains'
// keys to key-value pairs, and key-value pairs back to each domain's keys. A bad value costs
// only itself: it is left out and reported, the rest is kept.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "config/config.h"
#include "gateway/cluster/etcd_json.h"

namespace xcg {

struct KeyEntry {
  std::string key;  // the full etcd key
  std::string value;
  bool operator==(const KeyEntry&) const = default;
};

// PREFIX + "keys/".
std::string keys_prefix(std::string_view prefix);
// PREFIX + "keys/DOMAIN/FINGERPRINT".
std::string key_map_path(std::string_view prefix, std::string_view domain, const config::PublicKey& key);
// The value stored for a key: {"key": LINE WITH COMMENT, "readonly": BOOL}.
std::string key_map_value(const config::DomainKey& key);
// Every key of every domain, sorted by etcd key.
std::vector<KeyEntry> key_map_entries(std::string_view prefix,
                                      const std::map<std::string, config::Domain>& domains);

// A value that was left out, and why.
struct KeyMapProblem {
  std::string key;  // the etcd key
  std::string message;
  std::string str() const { return key + ": " + message; }
};

using DomainKeys = std::map<std::string, std::vector<config::DomainKey>>;

struct KeyMap {
  DomainKeys domains;  // by domain name; each domain's keys in etcd key order
  std::vector<KeyMapProblem> problems;
  size_t key_count() const;
};

// One value of the key map, read and checked against its etcd key.
struct KeyMapEntry {
  std::string domain;
  config::DomainKey key;
};
using KeyMapEntries = std::map<std::string, Result<KeyMapEntry>>;  // by etcd key

// `kv`, a key under keys_prefix(prefix), read; or why it is left out of the map.
Result<KeyMapEntry> read_key_entry(std::string_view prefix, const KeyValue& kv);
// The map from entries each read once (a watch's owner reads only what changed). A key listed
// under two domains is kept for the first in etcd key order only.
KeyMap assemble_key_map(const KeyMapEntries& entries);

// `kvs` are what a range of keys_prefix(prefix) returned (or the same kept up to date by a
// watch). A key listed under two domains is kept for the first in etcd key order only.
KeyMap read_key_map(std::string_view prefix, const std::vector<KeyValue>& kvs);

// The map as a YAML `domains:` document that `xcg keys import` (and a config include) reads
// back as the same map; domains and keys sorted.
std::string key_map_yaml(const DomainKeys& domains);

}  // namespace xcg
