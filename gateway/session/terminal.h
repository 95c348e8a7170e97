// The customer's end of a session as the session core (customer_session.h) sees it: somewhere
// to write bytes, and a way to end. The SSH channel is one (ssh_connection.h); a browser's
// WebSocket can be another. Nothing here knows a protocol.
#pragma once

#include <cstddef>
#include <string_view>

#include "base/error.h"

namespace xcg::gateway {

// err carries an exec command's errors; a transport without a second stream merges it.
enum class Stream { out, err };

class Terminal {
 public:
  virtual ~Terminal() = default;

  // Sends what the customer's end can take now of `bytes` and says how much that was: 0 when
  // it is full (the core tries again at its next step), an error when the customer is gone.
  virtual Result<size_t> write(Stream stream, std::string_view bytes) = 0;
  // Called once, after the last output was taken: report `exit_status` and close. `reason` is
  // why the session ended ("" when the customer chose to), already shown in the output, for a
  // transport whose close message carries one.
  virtual void end(int exit_status, std::string_view reason) = 0;
};

}  // namespace xcg::gateway
