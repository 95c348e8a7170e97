// One hub per domain: the only reader of the domain's console, fanning its output out to every
// attached viewer and merging the viewers' input back (tmux's one pane, many clients).
//
// Viewers are stream sockets whose other end is held by a session process. A viewer that stops
// reading never blocks the console or the other viewers: its backlog is bounded, and output
// that does not fit is skipped and replaced by one visible marker once it catches up.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "base/event_loop.h"
#include "base/unique_fd.h"

namespace xcg::gateway {

class ConsoleHub {
 public:
  using ViewerId = uint64_t;
  static constexpr size_t kMaxViewerBacklog = 256 * 1024;
  static constexpr size_t kMaxConsoleInput = 64 * 1024;

  ConsoleHub(EventLoop& loop, std::string domain);
  ~ConsoleHub();
  ConsoleHub(const ConsoleHub&) = delete;
  ConsoleHub& operator=(const ConsoleHub&) = delete;

  // Replaces the console (a non-blocking pty master); an invalid fd means "no console".
  // Viewers stay attached across changes.
  void set_console(UniqueFd console);
  bool has_console() const { return console_.valid(); }

  // `on_detach` runs once, when the viewer's socket closes or the hub is destroyed.
  ViewerId attach(UniqueFd viewer, std::function<void()> on_detach);
  // Sends "\r\n[xcg: TEXT]\r\n" to every viewer.
  void notice(std::string_view text);

  size_t viewer_count() const { return viewers_.size(); }
  const std::string& domain() const { return domain_; }

 private:
  struct Viewer {
    UniqueFd fd;
    std::string backlog;
    size_t skipped = 0;  // bytes dropped since the viewer fell behind
    std::function<void()> on_detach;
  };

  void on_console_event(uint32_t events);
  void read_console();
  void write_console();
  void drop_console();
  void on_viewer_event(ViewerId id, uint32_t events);
  bool read_viewer(Viewer& v);
  bool flush_viewer(Viewer& v);
  void queue_to_viewer(ViewerId id, Viewer& v, std::string_view bytes);
  void update_viewer_interest(const Viewer& v);
  void detach(ViewerId id);
  void broadcast(std::string_view bytes);

  EventLoop& loop_;
  std::string domain_;
  UniqueFd console_;
  std::string console_input_;
  std::map<ViewerId, Viewer> viewers_;
  ViewerId next_id_ = 1;
};

}  // namespace xcg::gateway
