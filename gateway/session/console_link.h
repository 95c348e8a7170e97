// The session's end of the console hub socket the broker passes on attach: the customer's
// keystrokes go in, the guest's output comes out. Closing it is how the hub learns of a detach.
#pragma once

#include <string>
#include <string_view>

#include "base/unique_fd.h"
#include "gateway/session/output_queue.h"

namespace xcg::gateway {

class ConsoleLink {
 public:
  explicit ConsoleLink(UniqueFd socket);

  int fd() const { return socket_.get(); }
  // Queues `bytes` for the guest (a customer pasting faster than the guest reads loses the
  // excess) and sends what the hub takes now; the rest goes with the next call.
  void send(std::string_view bytes);

  enum class Read { more, drained, closed };
  // Moves one chunk of the guest's output to `out`. closed: the hub is gone.
  Read read_into(OutputQueue& out);

 private:
  UniqueFd socket_;
  std::string pending_;  // customer input the hub has not taken yet
};

}  // namespace xcg::gateway
