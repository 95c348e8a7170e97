#include "gateway/broker/monitor.h"

#include <variant>

#include <fmt/format.h>

namespace xcg::gateway {
namespace {

std::string unpermitted(ipc::Type type) {
  return fmt::format("unpermitted request {}", ipc::type_name(type));
}

// Hands each request type to its overload. Broker -> session messages have none: the request
// table cuts them off before this point, and this one does too, should a row ever say otherwise.
struct Dispatch {
  SessionRecord& s;
  RequestHandler& handler;

  template <class T>
  void operator()(const T& request) {
    if constexpr (ipc::is_request_v<T>) handler.on(s, request);
    else handler.cut_off(s, unpermitted(ipc::type_of_v<T>));
  }
};

}  // namespace

void monitor(SessionRecord& s, const ipc::Received& received, RequestHandler& handler,
             TokenBucket::Clock::time_point now) {
  ipc::Type type = ipc::type_of(received.message);
  Verdict verdict = request_verdict(type, s.phase());
  if (!kind_permits(type, s.kind == SessionKind::web) || !role_permits(type, s.front) ||
      !metrics_permits(type, s.kind == SessionKind::metrics))
    verdict = Verdict::cut_off;
  if (verdict == Verdict::cut_off || received.fd) return handler.cut_off(s, unpermitted(type));
  if (type != ipc::Type::log && !s.requests.take(now))
    return handler.cut_off(s, fmt::format("request budget exceeded ({} at once, {} a second)", kRequestBurst,
                                          kRequestsPerSecond));
  if (verdict == Verdict::refuse) {
    if (auto answer = refusal_for(received.message, kRevokedText)) return handler.reply(s, *answer);
    return handler.cut_off(s, unpermitted(type));
  }
  std::visit(Dispatch{s, handler}, received.message);
}

}  // namespace xcg::gateway
