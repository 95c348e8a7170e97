// The monitor: every message from a session process passes here before anything acts on it
// (OpenSSH's monitor.c). The checks run in one place and in one order: no descriptor rides
// along, the request table allows the type in the session's phase, the session's request
// budget holds. Only then does the message reach its handler; anything else is refused or
// ends the session.
#pragma once

#include <string_view>

#include "gateway/broker/request_table.h"
#include "gateway/broker/session_record.h"
#include "gateway/ipc/ipc.h"

namespace xcg::gateway {

// What the broker does with the requests the monitor lets through. One overload per request
// type: an implementation that leaves one out stays abstract and does not compile.
class RequestHandler {
 public:
  virtual void on(SessionRecord& s, const ipc::LogRecord& r) = 0;
  virtual void on(SessionRecord& s, const ipc::AuthorizeReq& r) = 0;
  virtual void on(SessionRecord& s, const ipc::StatusReq& r) = 0;
  virtual void on(SessionRecord& s, const ipc::ActionReq& r) = 0;
  virtual void on(SessionRecord& s, const ipc::AttachReq& r) = 0;
  virtual void on(SessionRecord& s, const ipc::LogReq& r) = 0;
  virtual void on(SessionRecord& s, const ipc::WhoReq& r) = 0;
  virtual void on(SessionRecord& s, const ipc::SysrqReq& r) = 0;
  virtual void on(SessionRecord& s, const ipc::WebAuthorizeReq& r) = 0;
  virtual void on(SessionRecord& s, const ipc::WeblinkReq& r) = 0;
  virtual void on(SessionRecord& s, const ipc::NodeConnectReq& r) = 0;
  virtual void on(SessionRecord& s, const ipc::MetricsReq& r) = 0;
  // A refused request's answer (a revoked session's, say).
  virtual void reply(SessionRecord& s, const ipc::Message& answer) = 0;
  // Ends the session: no honest session sends what it sent.
  virtual void cut_off(SessionRecord& s, std::string_view why) = 0;

 protected:
  ~RequestHandler() = default;
};

// Checks `received` from `s` and hands it to `handler`, refuses it, or cuts `s` off.
void monitor(SessionRecord& s, const ipc::Received& received, RequestHandler& handler,
             TokenBucket::Clock::time_point now);

}  // namespace xcg::gateway
