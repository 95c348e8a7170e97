#include "gateway/cluster/key_map.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <set>

namespace xcg {
namespace {

using config::DomainKey;
using config::PublicKey;
using Json = nlohmann::json;

std::string full_line(const PublicKey& key) {
  if (key.comment.empty()) return key.openssh_line();
  return key.openssh_line() + " " + key.comment;
}

struct Path {
  std::string domain;
  std::string fingerprint;
};

// A fingerprint's base64 may hold '/': the domain ends at the first one.
Result<Path> split_path(std::string_view rest) {
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) return fail(Errc::invalid_input, "expected keys/DOMAIN/FINGERPRINT");
  Path p{std::string(rest.substr(0, slash)), std::string(rest.substr(slash + 1))};
  if (!config::valid_domain_name(p.domain))
    return fail(Errc::invalid_input, fmt::format("bad domain name '{}'", p.domain));
  return p;
}

Result<DomainKey> parse_value(const std::string& value) {
  auto json = Json::parse(value, nullptr, false);
  if (json.is_discarded() || !json.is_object())
    return fail(Errc::invalid_input, "the value is not a JSON object");
  auto line = json.find("key");
  if (line == json.end() || !line->is_string())
    return fail(Errc::invalid_input, "no \"key\" string in the value");
  auto readonly = json.find("readonly");
  if (readonly != json.end() && !readonly->is_boolean())
    return fail(Errc::invalid_input, "\"readonly\" is not true or false");
  auto key = config::parse_public_key(line->get<std::string>());
  if (!key) return fail(Errc::invalid_input, "bad public key: " + key.error().message);
  return DomainKey{.key = std::move(*key), .readonly = readonly != json.end() && readonly->get<bool>()};
}

void emit_key(YAML::Emitter& out, const DomainKey& k) {
  if (!k.readonly) {
    out << YAML::DoubleQuoted << full_line(k.key);
    return;
  }
  out << YAML::Flow << YAML::BeginMap << YAML::Key << "key" << YAML::Value << YAML::DoubleQuoted
      << full_line(k.key) << YAML::Key << "readonly" << YAML::Value << true << YAML::EndMap;
}

}  // namespace

std::string keys_prefix(std::string_view prefix) { return fmt::format("{}keys/", prefix); }

std::string key_map_path(std::string_view prefix, std::string_view domain, const PublicKey& key) {
  return fmt::format("{}{}/{}", keys_prefix(prefix), domain, key.fingerprint());
}

std::string key_map_value(const DomainKey& key) {
  return Json{{"key", full_line(key.key)}, {"readonly", key.readonly}}.dump();
}

std::vector<KeyEntry> key_map_entries(std::string_view prefix,
                                      const std::map<std::string, config::Domain>& domains) {
  std::vector<KeyEntry> out;
  for (const auto& [name, domain] : domains)
    for (const auto& k : domain.keys) out.push_back({key_map_path(prefix, name, k.key), key_map_value(k)});
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
  return out;
}

size_t KeyMap::key_count() const {
  size_t n = 0;
  for (const auto& [name, keys] : domains) n += keys.size();
  return n;
}

Result<KeyMapEntry> read_key_entry(std::string_view prefix, const KeyValue& kv) {
  auto path = split_path(std::string_view(kv.key).substr(keys_prefix(prefix).size()));
  if (!path) return tl::unexpected(path.error());
  auto key = parse_value(kv.value);
  if (!key) return tl::unexpected(key.error());
  if (key->key.fingerprint() != path->fingerprint)
    return fail(Errc::invalid_input,
                fmt::format("the key's fingerprint is {}, not the one in its name", key->key.fingerprint()));
  key->where = config::Location{kv.key, 1, 1};
  return KeyMapEntry{std::move(path->domain), std::move(*key)};
}

namespace {

// `entries`: (etcd key, entry) pairs, in the order that decides which of two domains listing
// the same key keeps it.
template <class Entries>
KeyMap assemble(const Entries& entries) {
  KeyMap out;
  std::map<std::string_view, std::string_view> owner_by_blob;
  for (const auto& [etcd_key, entry] : entries) {
    if (!entry) {
      out.problems.push_back({etcd_key, entry.error().message});
      continue;
    }
    auto [owner, fresh] = owner_by_blob.try_emplace(entry->key.key.blob, entry->domain);
    if (!fresh) {
      out.problems.push_back(
          {etcd_key, fmt::format("the key is already a key of domain '{}'", owner->second)});
      continue;
    }
    out.domains[entry->domain].push_back(entry->key);
  }
  return out;
}

}  // namespace

KeyMap assemble_key_map(const KeyMapEntries& entries) { return assemble(entries); }

KeyMap read_key_map(std::string_view prefix, const std::vector<KeyValue>& kvs) {
  std::vector<std::pair<std::string, Result<KeyMapEntry>>> entries;
  for (const auto& kv : kvs)
    if (kv.key.starts_with(keys_prefix(prefix))) entries.emplace_back(kv.key, read_key_entry(prefix, kv));
  return assemble(entries);
}

std::string key_map_yaml(const DomainKeys& domains) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "domains" << YAML::Value << YAML::BeginMap;
  for (const auto& [name, keys] : domains) {
    out << YAML::Key << name << YAML::Value << YAML::BeginMap << YAML::Key << "keys" << YAML::Value
        << YAML::BeginSeq;
    for (const auto& k : keys) emit_key(out, k);
    out << YAML::EndSeq << YAML::EndMap;
  }
  out << YAML::EndMap << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace xcg
