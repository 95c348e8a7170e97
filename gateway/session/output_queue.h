// What the session has to say to the customer and the customer's end has not taken yet.
#pragma once

#include <deque>
#include <string>
#include <string_view>

#include "gateway/session/terminal.h"

namespace xcg::gateway {

class OutputQueue {
 public:
  void add(Stream stream, std::string_view bytes);
  // Writes as much as the terminal takes now; an error means the customer is gone.
  Result<void> flush(Terminal& terminal);
  size_t bytes() const { return bytes_; }
  bool empty() const { return chunks_.empty(); }

 private:
  struct Chunk {
    Stream stream;
    std::string bytes;
  };
  std::deque<Chunk> chunks_;
  size_t bytes_ = 0;
};

}  // namespace xcg::gateway
