// Where the registry lives under the cluster's prefix, and how a node's record is written.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace xcg {

// nodes/<node>'s value, as JSON: {"address": ..., "fingerprint": ..., "version": ...}.
struct NodeInfo {
  std::string address;               // host:port of the node's SSH listener
  std::string host_key_fingerprint;  // "SHA256:..." of the key a front pins
  std::string version;
};

std::string nodes_prefix(std::string_view prefix);    // <prefix>nodes/
std::string domains_prefix(std::string_view prefix);  // <prefix>domains/
std::string encode_node(const NodeInfo& info);
std::optional<NodeInfo> decode_node(std::string_view value);

}  // namespace xcg
