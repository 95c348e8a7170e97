// A front's SSH client to a node (docs/fleet.md, "Front to node"), on the socket the broker
// connected: the key exchange, the node's host key pinned to the registry's fingerprint, the
// front's own host key as the login, and a session channel with the customer's pty and shell
// or command. Non-blocking calls paced by poll, within one deadline.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "gateway/session/channel_core.h"
#include "gateway/ssh_handles.h"

namespace xcg::gateway {

struct NodeLogin {
  std::string node;                  // its name, for the customer's messages
  std::string host_key_fingerprint;  // "SHA256:...": the node's host key must have it
  std::string user;                  // xcg-front:<domain>:<fingerprint>:<ro|rw>
  ssh_key front_key = nullptr;       // the front's Ed25519 host key (borrowed)
  std::optional<PtySize> pty;
  std::optional<std::string> command;  // exec; none: a shell
  // Then ask the node, on a further channel, which actions this login may offer (a browser
  // page's buttons: exec_channel.h).
  bool ask_actions = false;
};

// The front's own Ed25519 host key among its host keys (PEM), with which it logs in to nodes.
// Throws std::runtime_error if there is none.
SshKey load_front_key(const std::vector<std::string>& host_keys_pem);

// The user name a node accepts from a front for one customer.
std::string front_user(const std::string& domain, const std::string& fingerprint, bool readonly);
// The broker accepts such a name only from a key in its `fronts:`: a login with it is a front's.
bool is_front_user(std::string_view user);

// An open session channel to the node; the session owns the socket.
struct NodeChannel {
  SshSession session;
  SshChannel channel;
  std::optional<std::string> actions;  // the node's answer to ask_actions: "ACTION...", or none
};

// `node` is the connected socket; it is the session's from here on, whatever the outcome.
Result<NodeChannel> open_node_channel(UniqueFd node, const NodeLogin& login,
                                      std::chrono::steady_clock::time_point deadline);

}  // namespace xcg::gateway
