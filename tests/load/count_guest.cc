#include "tests/load/count_guest.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "base/unique_fd.h"

namespace xcg::load {
namespace {

using Clock = std::chrono::steady_clock;

// After a stall (nobody reading the pty) the guest catches up in bursts of at most this many.
constexpr uint64_t kMaxBurst = 2000;

int fail(const char* what) {
  std::fprintf(stderr, "count guest: %s: %s\r\n", what, std::strerror(errno));
  return 1;
}

// Writes all of `bytes` to the (blocking) console; false if the console is gone.
bool write_all(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(STDOUT_FILENO, bytes.data(), bytes.size());
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && errno == EAGAIN) {
      pollfd out{STDOUT_FILENO, POLLOUT, 0};
      if (::poll(&out, 1, -1) < 0 && errno != EINTR) return false;
    } else if (n < 0 && errno != EINTR) {
      return false;
    }
  }
  return true;
}

void discard_input(bool& input_open) {
  char buf[4096];
  ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
  if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) input_open = false;
}

class Counter {
 public:
  Counter(std::string domain, double rate) : domain_(std::move(domain)), rate_(rate) {}

  // Appends the lines due by `now` to `out`.
  void due_lines(Clock::time_point now, std::string& out) {
    double elapsed = std::chrono::duration<double>(now - start_).count();
    auto due = static_cast<uint64_t>(elapsed * rate_);
    lines(std::min(due, last_ + kMaxBurst), out);
  }

  // Appends the next `count` lines to `out` at once.
  void burst(uint64_t count, std::string& out) { lines(last_ + count, out); }

  // Milliseconds until the next line is due (at least 1).
  int ms_to_next(Clock::time_point now) const {
    double next_at = static_cast<double>(last_ + 1) / rate_;
    double elapsed = std::chrono::duration<double>(now - start_).count();
    return std::max(1, static_cast<int>((next_at - elapsed) * 1000.0) + 1);
  }

  uint64_t last() const { return last_; }

 private:
  void lines(uint64_t until, std::string& out) {
    char digits[24];
    for (uint64_t n = last_ + 1; n <= until; ++n) {
      auto res = std::to_chars(digits, digits + sizeof digits, n);
      out += domain_;
      out += ' ';
      out.append(digits, res.ptr);
      out += "\r\n";
    }
    last_ = std::max(last_, until);
  }

  std::string domain_;
  double rate_;
  Clock::time_point start_ = Clock::now();
  uint64_t last_ = 0;
};

}  // namespace

int run_count_guest(double lines_per_second, uint64_t halt_burst) {
  const char* name = std::getenv("XCG_DOMAIN");
  const char* domid = std::getenv("XCG_DOMID");
  std::string domain = name && *name ? name : "guest";
  // SIGTERM is the shutdown request, taken from a descriptor so that a write in progress
  // always completes and the last line printed is whole.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  if (::sigprocmask(SIG_BLOCK, &term, nullptr) < 0) return fail("sigprocmask");
  for (int sig : {SIGHUP, SIGINT, SIGPIPE}) {
    if (::signal(sig, SIG_IGN) == SIG_ERR) return fail("signal");
  }
  UniqueFd signal_fd(::signalfd(-1, &term, SFD_CLOEXEC));
  if (!signal_fd) return fail("signalfd");

  if (!write_all(
          fmt::format("\r\nBooting count guest {} (domid {})\r\n", domain, domid && *domid ? domid : "0")))
    return 1;
  Counter counter(domain, lines_per_second);
  bool input_open = true;
  std::string out;
  for (;;) {
    pollfd fds[2] = {{signal_fd.get(), POLLIN, 0}, {input_open ? STDIN_FILENO : -1, POLLIN, 0}};
    if (::poll(fds, 2, counter.ms_to_next(Clock::now())) < 0 && errno != EINTR) return fail("poll");
    if (fds[0].revents & POLLIN) break;
    if (fds[1].revents) discard_input(input_open);
    out.clear();
    counter.due_lines(Clock::now(), out);
    if (!out.empty() && !write_all(out)) return 1;
  }
  out.clear();
  counter.burst(halt_burst, out);
  out += fmt::format("{} halt {}\r\n", domain, counter.last());
  return write_all(out) ? 0 : 1;
}

}  // namespace xcg::load
