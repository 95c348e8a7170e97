// A front's relay to a node as a browser session sees it (no libssh here: xcg-web's session core
// does not link it). NodeRelay is the one implementation (node_relay.h).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "gateway/session/channel_core.h"

namespace xcg::gateway {

// What a command run on the node printed: ok with its output when it exited 0; otherwise the
// node's error, its "xcg: " taken off, or why there was no answer.
struct NodeAnswer {
  bool ok = false;
  std::string text;
  bool operator==(const NodeAnswer&) const = default;
};

class RelayCore : public ChannelCore {
 public:
  static constexpr size_t kMaxNodeCommands = 4;  // the node allows as many beside the console
  using Connected = std::function<void(std::optional<std::string> actions)>;
  using Answered = std::function<void(const NodeAnswer&)>;

  // Once the node's console is open, or could not be, `connected` gets the actions the node
  // offers this login ("ACTION...", none when it would not say), before the console's first byte.
  virtual void when_connected(Connected connected) = 0;
  // Runs the exec `command` on a further channel of the node's connection, beside the console;
  // `answered` gets its answer at a later step. False while the node's console is not open, or
  // when kMaxNodeCommands are under way.
  virtual bool ask(std::string command, Answered answered) = 0;
};

}  // namespace xcg::gateway
