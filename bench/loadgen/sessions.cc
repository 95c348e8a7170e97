// Single-session modes: `echo` (keystroke round trips) and `throughput` (guest → client).
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "bench/loadgen/options.h"
#include "bench/loadgen/stats.h"

namespace xcg::bench {
namespace {

constexpr auto kQuiet = std::chrono::milliseconds(300);
constexpr auto kKeystrokeTimeout = std::chrono::seconds(5);
constexpr size_t kTail = 256;

// What one attached session has received: a byte count and the newest bytes, plus the
// `[xcg: N bytes skipped]` lines xcg's hub sends a viewer that fell behind.
struct Stream {
  uint64_t bytes = 0;
  uint64_t skipped = 0;
  unsigned skip_notices = 0;
  std::string tail;
  Clock::time_point last_data = Clock::now();

  void take(std::string_view chunk) {
    bytes += chunk.size();
    last_data = Clock::now();
    std::string window = tail + std::string(chunk);
    count_skips(window, tail.size());
    tail = window.size() > kTail ? window.substr(window.size() - kTail) : window;
  }
  bool ends_with(std::string_view s) const { return tail.size() >= s.size() && tail.ends_with(s); }
  bool contains(std::string_view s) const { return tail.find(s) != std::string::npos; }
  void reset() { *this = Stream{}; }

 private:
  // Counts markers that end inside the new chunk (those ending in `old` were counted before).
  void count_skips(const std::string& window, size_t old) {
    static constexpr std::string_view kOpen = "[xcg: ", kClose = " bytes skipped]";
    for (size_t at = window.find(kOpen); at != std::string::npos; at = window.find(kOpen, at + 1)) {
      size_t digits = at + kOpen.size(), end = digits;
      while (end < window.size() && window[end] >= '0' && window[end] <= '9') ++end;
      if (end == digits || window.compare(end, kClose.size(), kClose) != 0) continue;
      if (end + kClose.size() <= old) continue;
      skipped += std::stoull(window.substr(digits, end - digits));
      ++skip_notices;
    }
  }
};

struct Attached {
  EventLoop loop;
  Stream stream;
  bool ended = false;
  std::unique_ptr<Conn> conn;
};

// Logs in and waits for the console; throws if that fails. Then waits for the replay to end.
std::unique_ptr<Attached> attach(const Target& t, const Options& o) {
  auto a = std::make_unique<Attached>();
  Attached* s = a.get();
  a->conn =
      std::make_unique<Conn>(a->loop, t, make_token(),
                             Conn::Handlers{nullptr, [s](Conn&, std::string_view d) { s->stream.take(d); },
                                            [s](Conn&) { s->ended = true; }});
  a->conn->start();
  a->loop.run_until([s] { return s->ended || s->conn->attached(); }, std::chrono::seconds(o.timeout_s));
  if (!a->conn->attached())
    throw std::runtime_error(
        fmt::format("cannot attach to {}: {}", t.domain, a->ended ? a->conn->error() : "timeout"));
  a->loop.run_until([s] { return Clock::now() - s->stream.last_data > kQuiet; }, std::chrono::seconds(3));
  return a;
}

// Types `keys` and waits until the stream shows `until` (within the timeout).
bool type_and_wait(Attached& a, std::string_view keys, std::string_view until,
                   std::chrono::milliseconds timeout) {
  if (!a.conn->send(keys)) return false;
  return a.loop.run_until([&] { return a.ended || a.stream.contains(until); }, timeout) && !a.ended;
}

uint64_t seq_output_bytes(uint64_t n) {
  uint64_t total = 0;
  for (uint64_t width = 1, low = 1; low <= n; ++width, low *= 10) {
    uint64_t high = std::min(n, low * 10 - 1);
    total += (high - low + 1) * (width + 2);  // digits + "\r\n"
  }
  return total;
}

}  // namespace

int run_echo(const Options& o) {
  auto targets = load_targets(o);
  auto a = attach(targets->list.front(), o);
  Samples rtt;
  int lost = 0;
  for (unsigned k = 0; k < o.keystrokes && !a->ended; ++k) {
    // A letter, then DEL: the guest's line never grows, and each key has a distinct echo.
    bool letter = k % 2 == 0;
    std::string_view expect = letter ? "x" : "\b \b";
    a->stream.reset();
    auto t0 = Clock::now();
    if (!a->conn->send(letter ? "x" : "\x7f")) break;
    bool ok = a->loop.run_until([&] { return a->ended || a->stream.ends_with(expect); },
                                std::chrono::duration_cast<std::chrono::milliseconds>(kKeystrokeTimeout));
    if (ok && !a->ended) rtt.add(ms_between(t0, Clock::now()));
    else ++lost;
  }
  Json j;
  j.str("mode", "echo")
      .integer("keystrokes", o.keystrokes)
      .integer("lost", lost)
      .str("error", a->ended ? a->conn->error() : "")
      .stats("rtt_ms", rtt);
  std::printf("%s\n", j.text().c_str());
  return 0;
}

int run_throughput(const Options& o) {
  auto targets = load_targets(o);
  auto a = attach(targets->list.front(), o);
  std::string mark = make_token();
  // Log in on the guest's console if it is at the login prompt; in its shell this is harmless.
  if (!type_and_wait(*a, fmt::format("\x03root\recho {}\r", mark), "\r\n" + mark + "\r\n",
                     std::chrono::seconds(o.timeout_s)))
    throw std::runtime_error("the guest did not answer on " + targets->list.front().domain);
  a->loop.run_until([&] { return Clock::now() - a->stream.last_data > kQuiet; }, std::chrono::seconds(3));
  std::string end_mark = make_token();
  a->stream.reset();
  auto t0 = Clock::now();
  double cpu0 = cpu_seconds();
  // The echo is typed ahead: the guest runs it after seq, so its output marks the end.
  bool ok = type_and_wait(*a, fmt::format("seq {}\recho {}\r", o.seq, end_mark), "\r\n" + end_mark + "\r\n",
                          std::chrono::seconds(o.timeout_s * 6));
  double seconds = ms_between(t0, Clock::now()) / 1000;
  uint64_t expected = seq_output_bytes(o.seq);
  Json j;
  j.str("mode", "throughput")
      .integer("seq", static_cast<int64_t>(o.seq))
      .integer("ok", ok ? 1 : 0)
      .str("error", ok ? "" : (a->ended ? a->conn->error() : "timeout"))
      .integer("bytes", static_cast<int64_t>(a->stream.bytes))
      .integer("expected_bytes", static_cast<int64_t>(expected))
      .integer("skipped_bytes", static_cast<int64_t>(a->stream.skipped))
      .integer("skip_notices", a->stream.skip_notices)
      .num("seconds", seconds)
      .num("mb_per_s", static_cast<double>(a->stream.bytes) / 1e6 / seconds)
      .num("client_cpu_s", cpu_seconds() - cpu0);
  std::printf("%s\n", j.text().c_str());
  return ok ? 0 : 1;
}

}  // namespace xcg::bench
