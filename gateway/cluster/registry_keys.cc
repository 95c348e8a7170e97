#include "gateway/cluster/registry_keys.h"

#include <nlohmann/json.hpp>

namespace xcg {

std::string nodes_prefix(std::string_view prefix) { return std::string(prefix) + "nodes/"; }

std::string domains_prefix(std::string_view prefix) { return std::string(prefix) + "domains/"; }

std::string encode_node(const NodeInfo& info) {
  return nlohmann::json{
      {"address", info.address}, {"fingerprint", info.host_key_fingerprint}, {"version", info.version}}
      .dump();
}

std::optional<NodeInfo> decode_node(std::string_view value) {
  auto j = nlohmann::json::parse(value, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  auto text = [&](const char* field) -> std::optional<std::string> {
    auto it = j.find(field);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  auto address = text("address");
  auto fingerprint = text("fingerprint");
  if (!address || !fingerprint || address->empty() || fingerprint->empty()) return std::nullopt;
  return NodeInfo{*address, *fingerprint, text("version").value_or("")};
}

}  // namespace xcg
