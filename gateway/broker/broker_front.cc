// A front's sessions (docs/fleet.md, "Front to node"): the broker finds the node that runs the
// session's domain, connects to it, and passes the socket; the session relays over it.
#include <fmt/format.h>

#include "gateway/broker/broker.h"
#include "gateway/broker/registry_directory.h"

namespace xcg::gateway {

void Broker::open_node_links() {
  if (!config_->is_front() || !fleet_ || fleet_->registry() == nullptr) return;
  nodes_ = std::make_unique<RegistryDirectory>(*fleet_->registry());
  node_links_ = std::make_unique<NodeLinks>(loop_, *nodes_);
}

void Broker::on(SessionRecord& s, const ipc::NodeConnectReq& req) {
  // The monitor lets only a front's sessions ask; one relay per session, and one more each
  // time its node says the domain migrated away.
  if (!may_connect_node(s, req)) return cut_off(s, "a second node_connect_req");
  s.node_connect_asked = true;
  // Audit with copies: the session record may be gone by the time the node answers.
  AuditEvent record{"node_connect", s.remote, s.domain, s.fingerprint, {}};
  if (!node_links_)
    return answer_node_connect(
        s.id, record, ipc::NodeConnectAns{false, "the fleet's registry is not available", "", ""}, {}, 0);
  auto answer = [this, id = s.id, record](const ipc::NodeConnectAns& answer, UniqueFd node,
                                          int64_t revision) {
    answer_node_connect(id, record, answer, std::move(node), revision);
  };
  if (req.moved_from.empty()) return node_links_->open(s.domain, std::move(answer));
  ++s.moves_followed;
  node_links_->open_elsewhere(s.domain, req.moved_from, s.last_revision, std::move(answer));
}

// A reconnect names the node the session was relayed to last; a session may follow its domain
// a few times, not loop on connects.
bool Broker::may_connect_node(const SessionRecord& s, const ipc::NodeConnectReq& req) const {
  if (!s.node_connect_asked) return req.moved_from.empty();
  if (req.moved_from.empty() || s.moves_followed >= kMaxMovesFollowed) return false;
  return s.last_node == req.moved_from;
}

void Broker::answer_node_connect(uint64_t session_id, AuditEvent record, const ipc::NodeConnectAns& answer,
                                 UniqueFd node, int64_t revision) {
  ++(answer.ok ? counters_.relays_ok : counters_.relays_failed);
  record.extra = {{"node", answer.node}, {"result", answer.ok ? "ok" : "error"}};
  if (!answer.ok) record.extra.emplace_back("reason", answer.text);
  audit_.write(record);
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) return;
  if (answer.ok) {
    it->second.last_node = answer.node;
    it->second.last_revision = revision;
  }
  send(it->second, answer, node.get());
}

}  // namespace xcg::gateway
