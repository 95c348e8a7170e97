// What the broker knows about one session process: who it is, where its login stands, and
// the budgets its requests draw on. The record owns the session's descriptors and their
// registrations in the broker's event loop, so that forgetting a session ends all of them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "base/event_loop.h"
#include "base/unique_fd.h"
#include "gateway/broker/metrics.h"
#include "gateway/broker/request_table.h"

namespace xcg::gateway {

// Which program serves the connection: xcg-session (SSH), xcg-web (the browser console), or
// xcg-web serving the metrics endpoint. Fixed at spawn; the monitor holds each kind to its own
// requests.
enum class SessionKind : uint8_t { ssh, web, metrics };

struct SessionRecord {
  uint64_t id = 0;
  pid_t pid = -1;
  SessionKind kind = SessionKind::ssh;
  // The broker is a fleet's front: the session relays its customer to a node (node_connect).
  bool front = false;
  // web: the peer is a trusted proxy, so the client's address it forwards is believed.
  bool trust_forwarded_for = false;
  UniqueFd pidfd;
  UniqueFd ipc;
  std::string remote;
  std::string source;  // the remote address's network (source_bucket), for per-source limits
  bool authorized = false;
  std::string domain;  // set once authorized; every later request is for this domain
  std::string fingerprint;
  std::string front_fingerprint;  // logged in through a front (docs/fleet.md): its host key's
  std::string front_key_blob;     // that key, to re-check `fronts:` when the config changes
  std::string key_label;          // the key's comment in the config, else its fingerprint
  std::string key_blob;           // to re-check the mapping when the config changes; web: the
                                  // key that minted the link ("" for xcg ctl and panel tokens)
  std::chrono::system_clock::time_point since = std::chrono::system_clock::now();
  bool revoked = false;
  bool readonly = false;
  int auth_requests = 0;
  // A well-behaved session stops at the max_key_offers and max_auth_tries its hello gave it;
  // the accepted key costs an offer and a signed request on top. Fixed at spawn: a reload
  // must not cut off a login that keeps to the limits it was given.
  int max_auth_requests = 0;
  TokenBucket requests{kRequestBurst, kRequestsPerSecond};  // every request but `log`
  TokenBucket log_records{kLogBurst, kLogLinesPerSecond};
  unsigned dropped_log_records = 0;     // since the last one written
  RefusedOffers refused_offers;         // audited once, when the session ends or logs in
  std::string action_in_flight;         // the one action asked for and not yet answered, if any
  std::optional<LoginFailure> refused;  // why its last login attempt was refused (the metrics)
  bool node_connect_asked = false;      // a front's session is relayed once...
  std::string last_node;                // ...to this node,
  int64_t last_revision = 0;            // by this revision of its domain's record,
  unsigned moves_followed = 0;          // and again each time its domain migrated away
  // Declared after the descriptors they watch: they end first.
  EventLoop::Timer grace_timer;
  EventLoop::Timer revoke_timer;  // revoked: SIGKILL if still there when it fires
  EventLoop::Watch exit_watch;
  EventLoop::Watch ipc_watch;

  SessionPhase phase() const {
    if (revoked) return SessionPhase::revoked;
    return authorized ? SessionPhase::authorized : SessionPhase::preauth;
  }
  // The IPC channel is gone (the session closed it, or was cut off); the process may linger.
  void close_ipc() {
    ipc_watch.reset();
    ipc.reset();
  }
};

}  // namespace xcg::gateway
