// One hub per domain: the only reader of the domain's console, fanning its output out to every
// attached viewer and merging the viewers' input back (tmux's one pane, many clients).
//
// Everything the console prints goes into a scrollback ring and the persistent console log,
// whether or not anyone is attached. A viewer that attaches first gets a replay of the recent
// output, then live output: both are queued in the same event-loop step, so there is no gap and
// no duplicate at the seam. Viewers are stream sockets whose other end is held by a session
// process. While no viewer has room for more, the console is not read, so the guest waits for
// its fastest viewer as it would on a serial line; but a viewer that frees no room for
// `max_hold` never blocks the console or the other viewers: its backlog is bounded, and output
// that does not fit is skipped and replaced by one visible marker once it catches up
// (docs/console.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/event_loop.h"
#include "base/unique_fd.h"
#include "gateway/console/console_log.h"
#include "gateway/console/scrollback.h"

namespace xcg::gateway {

// Console bytes relayed, for the metrics: what the hubs sent their viewers and what they wrote
// to the consoles from viewers' input. Shared by the hubs of one directory, so that the sums
// outlive a hub.
struct HubTraffic {
  uint64_t to_viewers = 0;
  uint64_t to_console = 0;
};

struct HubSettings {
  size_t scrollback_bytes = 256 * 1024;
  size_t replay_bytes = 64 * 1024;
  std::string log_path;  // "" = no console log
  size_t log_max_bytes = 1024 * 1024;
  HubTraffic* traffic = nullptr;  // counted into, if set; outlives the hub
  // How long the guest may wait for a viewer that has no room and frees none.
  std::chrono::milliseconds max_hold{1000};
};

struct ViewerInfo {
  std::string label;  // the key's comment, or its fingerprint
  bool readonly = false;
  std::chrono::system_clock::time_point since = std::chrono::system_clock::now();
  // The broker's session that attached this viewer (0: none), so that a reload that narrows
  // the session's rights can find its viewers.
  uint64_t session_id = 0;
};

class ConsoleHub {
 public:
  using ViewerId = uint64_t;
  static constexpr size_t kMaxViewerBacklog = 256 * 1024;
  static constexpr size_t kMaxConsoleInput = 64 * 1024;

  ConsoleHub(EventLoop& loop, std::string domain, HubSettings settings = {});
  ~ConsoleHub();
  ConsoleHub(const ConsoleHub&) = delete;
  ConsoleHub& operator=(const ConsoleHub&) = delete;

  // Replaces the console (a non-blocking pty master); an invalid fd means "no console".
  // Viewers stay attached across changes.
  void set_console(UniqueFd console);
  bool has_console() const { return console_.valid(); }
  // The domain (re)started: replays begin here.
  void mark_boot() { scrollback_.mark_boot(); }

  // `on_detach` runs once, when the viewer's socket closes or the hub is destroyed. A read-only
  // viewer's input is discarded.
  ViewerId attach(UniqueFd viewer, ViewerInfo info, std::function<void()> on_detach);
  // Sends "\r\n[xcg: TEXT]\r\n" to every viewer; it is also recorded like console output.
  void notice(std::string_view text);
  // The session's viewers become read-only at once: whatever the hub reads from them from now
  // on is discarded, also what they sent before this call. Each is told `text` (only it, not the log).
  // Returns how many viewers changed.
  size_t make_readonly(uint64_t session_id, std::string_view text);
  // The session's viewers are told `text` and detached: they get no more output, their input
  // is discarded, and their socket closes once the line is sent (or after kDetachGrace, for a
  // viewer that does not read). Returns how many.
  size_t detach_session(uint64_t session_id, std::string_view text);
  static constexpr auto kDetachGrace = std::chrono::seconds(2);

  size_t viewer_count() const { return viewers_.size(); }
  // The attached viewers. Viewers whose sessions have already hung up are detached first, so
  // a customer who just left is not listed because the event loop has not seen the hang-up yet.
  std::vector<ViewerInfo> viewers();
  const std::string& domain() const { return domain_; }
  const ConsoleLog& log() const { return log_; }

 private:
  struct Viewer {
    UniqueFd fd;
    ViewerInfo info;
    std::string backlog;
    size_t skipped = 0;  // bytes dropped since the viewer fell behind
    std::function<void()> on_detach;
    bool wants_out = false;  // EPOLLOUT is in the viewer's epoll interest
    bool closing = false;    // detach_session: sending its last line, then closed
    // After `fd`: they end before the socket closes, and with the viewer they call back into.
    EventLoop::Watch watch;
    EventLoop::Timer close_timer;
  };

  void on_console_event(uint32_t events);
  void read_console();
  void write_console();
  void drop_console();
  void on_viewer_event(ViewerId id, uint32_t events);
  bool read_viewer(Viewer& v);
  bool flush_viewer(Viewer& v);
  void queue_to_viewer(Viewer& v, std::string_view bytes);
  void update_viewer_interest(Viewer& v);
  void update_console_interest();
  bool every_viewer_full() const;
  void hold_if_every_viewer_full();
  void release_hold();
  void made_room();
  void detach(ViewerId id);
  // The viewers attached by `session_id`.
  std::vector<ViewerId> viewers_of(uint64_t session_id) const;
  void close_after_flush(ViewerId id, Viewer& v);
  void record(std::string_view bytes);  // scrollback + log + every viewer
  // A viewer may hold its replay plus this much live output before it skips.
  size_t backlog_limit() const { return kMaxViewerBacklog + settings_.replay_bytes; }

  EventLoop& loop_;
  std::string domain_;
  HubSettings settings_;
  Scrollback scrollback_;
  ConsoleLog log_;
  UniqueFd console_;
  EventLoop::Watch console_watch_;  // after console_, so that it ends before the pty closes
  std::string console_input_;
  bool console_wants_out_ = false;  // EPOLLOUT is in the console's epoll interest
  std::map<ViewerId, Viewer> viewers_;
  ViewerId next_id_ = 1;
  bool holding_ = false;       // the console is not read: every viewer is full
  bool hold_expired_ = false;  // no hold until a viewer frees room again
  EventLoop::Timer hold_timer_;
};

}  // namespace xcg::gateway
