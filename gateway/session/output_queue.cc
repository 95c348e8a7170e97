#include "gateway/session/output_queue.h"

namespace xcg::gateway {
namespace {

// Output is queued in chunks up to this size, so a burst becomes few writes.
constexpr size_t kOutputChunk = 64 * 1024;

}  // namespace

void OutputQueue::add(Stream stream, std::string_view bytes) {
  if (bytes.empty()) return;
  if (!chunks_.empty() && chunks_.back().stream == stream && stream == Stream::out &&
      chunks_.back().bytes.size() < kOutputChunk)
    chunks_.back().bytes.append(bytes);
  else chunks_.push_back({stream, std::string(bytes)});
  bytes_ += bytes.size();
}

Result<void> OutputQueue::flush(Terminal& terminal) {
  while (!chunks_.empty()) {
    Chunk& c = chunks_.front();
    auto n = terminal.write(c.stream, c.bytes);
    if (!n) return tl::unexpected(n.error());
    if (*n == 0) break;
    c.bytes.erase(0, *n);
    bytes_ -= *n;
    if (c.bytes.empty()) chunks_.pop_front();
  }
  return {};
}

}  // namespace xcg::gateway
