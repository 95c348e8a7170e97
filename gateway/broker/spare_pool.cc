#include "gateway/broker/spare_pool.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "base/log.h"

namespace xcg::gateway {
namespace {

bool has_exited(int pidfd) {
  auto waited = wait_child(pidfd, false);
  return !waited || waited->si_pid != 0;
}

std::string exit_text(const Result<siginfo_t>& waited) {
  if (!waited) return waited.error().message;
  return waited->si_code == CLD_EXITED ? fmt::format("exit {}", waited->si_status)
                                       : fmt::format("signal {}", waited->si_status);
}

}  // namespace

SparePool::SparePool(EventLoop& loop, Start start) : loop_(loop), start_(std::move(start)) {}

SparePool::~SparePool() {
  refill_timer_.reset();
  for (auto& [id, p] : parked_) stop(p);
}

// Through the pidfd: the pid may have been reaped (on_exit) and reused.
// A failure is logged, not returned: the spare is dropped either way, and a spare that
// outlives its SIGKILL or stays unreaped should be seen.
void SparePool::stop(Parked& p) noexcept {
  p.exit_watch.reset();
  int pidfd = p.session.child.pidfd.get();
  pid_t pid = p.session.child.pid;
  if (::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0) < 0)
    log::warn("stopping spare session {}: pidfd_send_signal: {}", pid, std::strerror(errno));
  auto waited = wait_child(pidfd, true);  // after SIGKILL: a moment, not a wait
  if (!waited) log::warn("stopping spare session {}: {}", pid, waited.error().message);
}

void SparePool::set_target(unsigned n) {
  target_ = n;
  while (parked_.size() > target_) {
    auto newest = std::prev(parked_.end());
    stop(newest->second);
    parked_.erase(newest);
  }
  schedule_refill(backoff_);
}

std::optional<SpawnedSession> SparePool::take() {
  while (!parked_.empty()) {
    auto oldest = parked_.begin();
    Parked p = std::move(oldest->second);
    parked_.erase(oldest);
    p.exit_watch.reset();
    // Dead but not yet seen by on_exit: its hello would fail and lose the connection.
    if (has_exited(p.session.child.pidfd.get())) {
      back_off();
      continue;
    }
    backoff_ = std::chrono::milliseconds(0);  // it lived until used: the program works
    schedule_refill(backoff_);
    return std::move(p.session);
  }
  if (target_ > 0) schedule_refill(backoff_);
  return std::nullopt;
}

std::vector<pid_t> SparePool::pids() const {
  std::vector<pid_t> out;
  for (const auto& [id, p] : parked_) out.push_back(p.session.child.pid);
  return out;
}

// From the event loop, not the caller's turn: an accept hands its connection over first.
void SparePool::schedule_refill(std::chrono::milliseconds delay) {
  if (refill_timer_ || parked_.size() >= target_) return;
  refill_timer_ = loop_.timer(
      delay, "spare sessions", [this] { refill(); }, [this] { back_off(); });
}

// One spawn per turn of the loop, so that filling the pool never holds up a connection.
void SparePool::refill() {
  refill_timer_.reset();
  if (parked_.size() >= target_) return;
  start_one();
  schedule_refill(backoff_);
}

void SparePool::start_one() {
  auto started = start_();
  if (!started) {
    log::error("cannot start a spare session: {}", started.error().message);
    return back_off();
  }
  uint64_t id = next_id_++;
  auto& p = parked_[id];
  p.session = std::move(*started);
  p.exit_watch = loop_.watch(
      p.session.child.pidfd.get(), EPOLLIN, fmt::format("spare session {}", p.session.child.pid),
      [this, id](uint32_t) { on_exit(id); }, [this, id] { on_exit(id); });
}

void SparePool::on_exit(uint64_t id) {
  auto it = parked_.find(id);
  if (it == parked_.end()) return;
  auto waited = wait_child(it->second.session.child.pidfd.get(), false);
  if (waited && waited->si_pid == 0) return;  // not yet
  pid_t pid = it->second.session.child.pid;
  parked_.erase(it);
  back_off();
  log::warn("spare session {} ended while parked ({}); replacing it in {} ms", pid, exit_text(waited),
            backoff_.count());
}

void SparePool::back_off() {
  backoff_ = std::clamp(backoff_ * 2, std::chrono::milliseconds(kFirstBackoff),
                        std::chrono::milliseconds(kMaxBackoff));
  refill_timer_.reset();
  schedule_refill(backoff_);
}

}  // namespace xcg::gateway
