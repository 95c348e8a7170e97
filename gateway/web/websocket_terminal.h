// The browser's end of a session (terminal.h) as frames waiting for the WebSocket: output
// becomes binary frames, command answers text frames, the end a close frame. The transport
// (web_transport.h) takes the frames one at a time, one write in flight; nothing here knows
// Beast.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/session/terminal.h"

namespace xcg::gateway::web {

inline constexpr size_t kMaxQueuedOutput = 256 * 1024;

struct Frame {
  bool binary = true;
  std::string bytes;
};

struct CloseFrame {
  uint16_t code = 1000;  // 1000 normal, 1008 policy (revoked, refused)
  std::string reason;    // at most 123 bytes, cut at a UTF-8 boundary
};

// `text` cut to at most `max` bytes without splitting a UTF-8 sequence.
std::string cut_utf8(std::string_view text, size_t max);
// A close frame: 1000 for an end the customer chose or an idle timeout, 1008 otherwise.
CloseFrame close_frame(int exit_status, std::string_view reason);

class WebSocketTerminal : public Terminal {
 public:
  // Queues output as binary frames, at most kMaxQueuedOutput bytes: beyond that it takes 0 and
  // the session stops reading the console until the browser catches up.
  Result<size_t> write(Stream stream, std::string_view bytes) override;
  void end(int exit_status, std::string_view reason) override;

  // A command's answer; not bounded by the output limit (the page sends one command at a time).
  void send_text(std::string text);
  // The browser is gone: writes fail from now on.
  void gone() { gone_ = true; }

  // For the transport: the next frame to write, if any, and after the last one the close.
  std::optional<Frame> take_frame();
  const std::optional<CloseFrame>& close() const { return close_; }

 private:
  std::deque<Frame> frames_;
  size_t queued_ = 0;  // binary bytes in frames_
  std::optional<CloseFrame> close_;
  bool gone_ = false;
};

}  // namespace xcg::gateway::web
