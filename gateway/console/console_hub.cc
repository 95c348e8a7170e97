#include "gateway/console/console_hub.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include <fmt/format.h>

#include "base/log.h"

namespace xcg::gateway {
namespace {

constexpr size_t kReadChunk = 16 * 1024;
constexpr int kReadsPerEvent = 8;  // then yield to other descriptors
// Console output is gathered into batches of up to this much and recorded once per batch.
constexpr size_t kConsoleBatch = 64 * 1024;
// A guest writing a byte at a time must not keep the loop in one batch for ever.
constexpr int kReadsPerBatch = 64;

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

}  // namespace

ConsoleHub::ConsoleHub(EventLoop& loop, std::string domain, HubSettings settings)
    : loop_(loop),
      domain_(std::move(domain)),
      settings_(std::move(settings)),
      scrollback_(settings_.scrollback_bytes),
      log_(settings_.log_path, settings_.log_max_bytes) {}

ConsoleHub::~ConsoleHub() {
  drop_console();
  while (!viewers_.empty()) detach(viewers_.begin()->first);
}

void ConsoleHub::set_console(UniqueFd console) {
  // What the old console still holds (the last lines before a reboot) is read, not dropped.
  while (console_ && console_.get() != console.get()) {
    char buf[kReadChunk];
    ssize_t n = ::read(console_.get(), buf, sizeof buf);
    if (n <= 0) break;
    record(std::string_view(buf, static_cast<size_t>(n)));
  }
  drop_console();
  console_ = std::move(console);
  if (!console_) return;
  console_wants_out_ = false;
  console_watch_ = loop_.watch(
      console_.get(), EPOLLIN, "hub " + domain_, [this](uint32_t events) { on_console_event(events); },
      [this] { drop_console(); });
}

void ConsoleHub::drop_console() {
  if (!console_) return;
  holding_ = false;
  hold_timer_ = {};
  console_watch_.reset();
  console_.reset();
  console_input_.clear();  // typed-ahead input for a console that is gone is meaningless
}

void ConsoleHub::on_console_event(uint32_t events) {
  if (events & EPOLLOUT) write_console();
  if (console_ && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) read_console();
}

void ConsoleHub::read_console() {
  // A pty read returns a few KiB at most. Gathering what is there and recording it once costs
  // one send per viewer and one log write per batch instead of per read.
  char batch[kConsoleBatch];
  size_t used = 0;
  bool closed = false;
  for (int i = 0; i < kReadsPerBatch && used < sizeof batch; ++i) {
    ssize_t n = ::read(console_.get(), batch + used, sizeof batch - used);
    if (n > 0) {
      used += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // Else EAGAIN, or EOF or EIO: the guest side of the pty is gone (the hypervisor tells us
    // about a new one).
    closed = !(n < 0 && would_block(errno));
    break;
  }
  if (closed) {
    log::debug("console of {} closed", domain_);
    drop_console();
  }
  if (used > 0) record(std::string_view(batch, used));
  hold_if_every_viewer_full();
}

// Flow control. A guest printing faster than its viewers take it waits, as on a serial line or
// behind OpenSSH's relay, instead of having its output skipped; the wait lasts while some viewer
// frees room within max_hold, so a stalled viewer holds the guest once, for max_hold, and is then
// skipped ahead until it reads again.
bool ConsoleHub::every_viewer_full() const {
  bool any = false;
  for (const auto& [id, v] : viewers_) {
    if (v.closing) continue;
    if (v.skipped == 0 && v.backlog.size() + kConsoleBatch <= backlog_limit()) return false;
    any = true;
  }
  return any;
}

void ConsoleHub::hold_if_every_viewer_full() {
  if (!console_ || holding_ || hold_expired_ || !every_viewer_full()) return;
  holding_ = true;
  update_console_interest();
  hold_timer_ = loop_.timer(settings_.max_hold, "hub " + domain_ + " hold", [this] {
    hold_expired_ = true;
    release_hold();
  });
}

void ConsoleHub::release_hold() {
  if (!holding_) return;
  holding_ = false;
  hold_timer_ = {};
  update_console_interest();
}

void ConsoleHub::made_room() {
  hold_expired_ = false;
  release_hold();
}

void ConsoleHub::update_console_interest() {
  if (!console_) return;
  loop_.modify(console_.get(), (holding_ ? 0U : EPOLLIN) | (console_wants_out_ ? EPOLLOUT : 0U));
}

void ConsoleHub::write_console() {
  while (console_ && !console_input_.empty()) {
    ssize_t n = ::write(console_.get(), console_input_.data(), console_input_.size());
    if (n > 0) {
      if (settings_.traffic) settings_.traffic->to_console += static_cast<uint64_t>(n);
      console_input_.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && would_block(errno)) break;
    drop_console();
    return;
  }
  bool wants_out = !console_input_.empty();
  if (!console_ || wants_out == console_wants_out_) return;
  console_wants_out_ = wants_out;
  update_console_interest();
}

ConsoleHub::ViewerId ConsoleHub::attach(UniqueFd viewer, ViewerInfo info, std::function<void()> on_detach) {
  ViewerId id = next_id_++;
  set_nonblocking(viewer.get());
  int fd = viewer.get();
  auto& v = viewers_.emplace(id, Viewer{std::move(viewer), std::move(info), {}, 0, std::move(on_detach)})
                .first->second;
  // The replay is queued now, in this loop step; live output can only follow it.
  v.backlog = scrollback_.replay(settings_.replay_bytes);
  v.wants_out = !v.backlog.empty();
  v.watch = loop_.watch(
      fd, v.wants_out ? EPOLLIN | EPOLLOUT : EPOLLIN, fmt::format("hub {} viewer {}", domain_, id),
      [this, id](uint32_t events) { on_viewer_event(id, events); }, [this, id] { detach(id); });
  made_room();  // a new viewer has room for the guest's next output
  return id;
}

std::vector<ViewerInfo> ConsoleHub::viewers() {
  std::vector<ViewerId> hung_up;
  for (const auto& [id, v] : viewers_) {
    pollfd p{v.fd.get(), POLLRDHUP, 0};
    if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP))) hung_up.push_back(id);
  }
  for (auto id : hung_up) on_viewer_event(id, EPOLLIN);  // reads what is left, then detaches
  std::vector<ViewerInfo> out;
  for (const auto& [id, v] : viewers_)
    if (!v.closing) out.push_back(v.info);
  return out;
}

void ConsoleHub::notice(std::string_view text) { record(fmt::format("\r\n[xcg: {}]\r\n", text)); }

std::vector<ConsoleHub::ViewerId> ConsoleHub::viewers_of(uint64_t session_id) const {
  std::vector<ViewerId> out;
  for (const auto& [id, v] : viewers_)
    if (session_id != 0 && v.info.session_id == session_id && !v.closing) out.push_back(id);
  return out;
}

size_t ConsoleHub::make_readonly(uint64_t session_id, std::string_view text) {
  auto ids = viewers_of(session_id);
  for (auto id : ids) {
    Viewer& v = viewers_.at(id);
    v.info.readonly = true;
    // Past the backlog bound if need be: the viewer must learn why its typing stopped.
    v.backlog += fmt::format("\r\n[xcg: {}]\r\n", text);
    if (!flush_viewer(v)) detach(id);
  }
  return ids.size();
}

size_t ConsoleHub::detach_session(uint64_t session_id, std::string_view text) {
  auto ids = viewers_of(session_id);
  for (auto id : ids) {
    Viewer& v = viewers_.at(id);
    v.closing = true;
    v.backlog += fmt::format("\r\n[xcg: {}]\r\n", text);
    close_after_flush(id, v);
  }
  if (holding_ && !every_viewer_full()) release_hold();  // no more waiting for them
  return ids.size();
}

// A closing viewer's socket closes when its backlog is sent; one that does not read is closed
// after kDetachGrace anyway.
void ConsoleHub::close_after_flush(ViewerId id, Viewer& v) {
  if (!flush_viewer(v) || v.backlog.empty()) return detach(id);
  if (v.close_timer) return;
  v.close_timer = loop_.timer(kDetachGrace, fmt::format("hub {} viewer {} closing", domain_, id),
                              [this, id] { detach(id); });
}

void ConsoleHub::record(std::string_view bytes) {
  scrollback_.append(bytes);
  std::vector<ViewerId> gone;
  for (auto& [id, v] : viewers_) {
    if (v.closing) continue;
    queue_to_viewer(v, bytes);
    if (!flush_viewer(v)) gone.push_back(id);
  }
  log_.append(bytes);  // after the viewers: the file write stays off the echo's path
  for (auto id : gone) detach(id);
}

void ConsoleHub::queue_to_viewer(Viewer& v, std::string_view bytes) {
  if (v.skipped > 0 && v.backlog.size() <= backlog_limit() / 2) {
    // The viewer caught up: tell it what it missed before it gets new output.
    v.backlog += fmt::format("\r\n[xcg: {} bytes skipped]\r\n", v.skipped);
    v.skipped = 0;
  }
  if (v.skipped > 0 || v.backlog.size() + bytes.size() > backlog_limit()) {
    v.skipped += bytes.size();
    return;
  }
  v.backlog.append(bytes);
}

bool ConsoleHub::flush_viewer(Viewer& v) {
  while (!v.backlog.empty()) {
    ssize_t n = ::send(v.fd.get(), v.backlog.data(), v.backlog.size(), MSG_NOSIGNAL);
    if (n > 0) {
      if (settings_.traffic) settings_.traffic->to_viewers += static_cast<uint64_t>(n);
      v.backlog.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && would_block(errno)) break;
    return false;
  }
  update_viewer_interest(v);
  return true;
}

void ConsoleHub::update_viewer_interest(Viewer& v) {
  bool wants_out = !v.backlog.empty() || v.skipped > 0;
  if (wants_out == v.wants_out) return;  // an epoll_ctl per echo was a tenth of the hub's CPU
  v.wants_out = wants_out;
  loop_.modify(v.fd.get(), wants_out ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

void ConsoleHub::on_viewer_event(ViewerId id, uint32_t events) {
  auto it = viewers_.find(id);
  if (it == viewers_.end()) return;
  Viewer& v = it->second;
  if (v.closing) {
    if (events & EPOLLOUT) return close_after_flush(id, v);
    if (!read_viewer(v)) detach(id);  // discards its input, notices a hang-up
    return;
  }
  if (events & EPOLLOUT) {
    queue_to_viewer(v, {});  // a viewer that caught up hears what it missed
    if (!flush_viewer(v)) return detach(id);
    if (v.backlog.size() <= backlog_limit() / 2) made_room();
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    if (!read_viewer(v)) return detach(id);
  }
}

bool ConsoleHub::read_viewer(Viewer& v) {
  char buf[kReadChunk];
  for (int i = 0; i < kReadsPerEvent; ++i) {
    ssize_t n = ::read(v.fd.get(), buf, sizeof buf);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      return would_block(errno);
    }
    if (!console_ || v.info.readonly || v.closing) continue;  // nobody to type to, or not allowed to
    size_t room = kMaxConsoleInput - std::min(kMaxConsoleInput, console_input_.size());
    console_input_.append(buf, std::min(room, static_cast<size_t>(n)));
    write_console();
  }
  return true;
}

void ConsoleHub::detach(ViewerId id) {
  auto it = viewers_.find(id);
  if (it == viewers_.end()) return;
  auto on_detach = std::move(it->second.on_detach);
  viewers_.erase(it);  // its watch and close timer end with it
  if (holding_ && !every_viewer_full()) release_hold();
  if (on_detach) on_detach();
}

}  // namespace xcg::gateway
