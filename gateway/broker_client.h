// The session process's side of the IPC: one blocking call per request, like OpenSSH's
// monitor_wrap.c. The broker answers from memory, so a call waits milliseconds, not seconds.
#pragma once

#include "base/error.h"
#include "gateway/ipc.h"

namespace xcg::gateway {

class BrokerClient {
 public:
  explicit BrokerClient(int fd) : fd_(fd) {}

  Result<ipc::Hello> hello();
  Result<ipc::AuthorizeAns> authorize(const ipc::AuthorizeReq& req);
  Result<ipc::StatusAns> status();
  Result<ipc::ActionAns> action(config::Action a);
  // On success the console socket is in `console`.
  Result<ipc::AttachAns> attach(UniqueFd& console);
  void log(int level, std::string_view text) noexcept;

 private:
  Result<ipc::Received> call(const ipc::Message& request, ipc::Type answer);
  Result<ipc::Received> wait_for(ipc::Type answer);

  int fd_;
};

}  // namespace xcg::gateway
