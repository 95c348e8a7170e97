#include "gateway/web/websocket_terminal.h"

#include <algorithm>

namespace xcg::gateway::web {
namespace {

// Frames are merged up to this size: a console writes many small chunks.
constexpr size_t kMaxFrameBytes = 16 * 1024;

bool continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

}  // namespace

std::string cut_utf8(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t end = max;
  while (end > 0 && continuation_byte(text[end])) --end;  // text[end] starts the cut sequence
  return std::string(text.substr(0, end));
}

CloseFrame close_frame(int exit_status, std::string_view reason) {
  return CloseFrame{static_cast<uint16_t>(exit_status == 0 ? 1000 : 1008), cut_utf8(reason, 123)};
}

Result<size_t> WebSocketTerminal::write(Stream, std::string_view bytes) {
  if (gone_) return fail(Errc::peer_closed, "the browser is gone");
  size_t n = std::min(bytes.size(), kMaxQueuedOutput - std::min(kMaxQueuedOutput, queued_));
  if (n == 0) return size_t{0};
  for (size_t done = 0; done < n;) {
    if (frames_.empty() || !frames_.back().binary || frames_.back().bytes.size() >= kMaxFrameBytes)
      frames_.push_back(Frame{true, {}});
    size_t part = std::min(n - done, kMaxFrameBytes - frames_.back().bytes.size());
    frames_.back().bytes.append(bytes.substr(done, part));
    done += part;
  }
  queued_ += n;
  return n;
}

void WebSocketTerminal::end(int exit_status, std::string_view reason) {
  if (!close_) close_ = close_frame(exit_status, reason);
}

void WebSocketTerminal::send_text(std::string text) {
  if (!gone_) frames_.push_back(Frame{false, std::move(text)});
}

std::optional<Frame> WebSocketTerminal::take_frame() {
  if (frames_.empty()) return std::nullopt;
  Frame f = std::move(frames_.front());
  frames_.pop_front();
  if (f.binary) queued_ -= f.bytes.size();
  return f;
}

}  // namespace xcg::gateway::web
