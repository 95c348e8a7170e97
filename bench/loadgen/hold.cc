// `hold`: keeps many attached sessions open while bench.py measures the servers. Commands,
// one per line on stdin; each answers with one JSON line on stdout:
//   open N                       attach sessions until N are open (the domains in order)
//   trickle WINDOW_MS PERIOD_MS  every open session types a key every PERIOD_MS (random phase)
//                                for WINDOW_MS; the guest's echo is the trickle of output, and
//                                its round trip is measured
//   quit                         (or end of input) disconnect everything and exit
#include <unistd.h>

#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench/loadgen/options.h"
#include "bench/loadgen/stats.h"

namespace xcg::bench {
namespace {

constexpr auto kEchoTimeout = std::chrono::seconds(10);

struct Held {
  std::unique_ptr<Conn> conn;
  EventLoop::TimerId login_timer = 0;
  bool attached = false;
  bool waiting = false;  // a keystroke's echo is due
  bool letter = true;
  std::string expect, got;
  Clock::time_point sent;
};

class Holder {
 public:
  Holder(const Options& o, std::unique_ptr<Targets> targets) : o_(o), targets_(std::move(targets)) {}

  int run() {
    if (!set_nonblocking(STDIN_FILENO)) throw std::runtime_error("stdin: fcntl failed");
    loop_.add(STDIN_FILENO, EPOLLIN, "commands", [this](uint32_t) { read_commands(); });
    while (!quit_) loop_.run_once(std::chrono::milliseconds(200));
    loop_.remove(STDIN_FILENO);
    for (auto& h : held_) h->conn->close();
    return 0;
  }

 private:
  void read_commands() {
    char buf[1024];
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      quit_ = true;
      return;
    }
    if (n < 0) return;
    input_.append(buf, static_cast<size_t>(n));
    for (size_t nl; (nl = input_.find('\n')) != std::string::npos;) {
      std::string line = input_.substr(0, nl);
      input_.erase(0, nl + 1);
      command(line);
    }
  }

  void command(const std::string& line) {
    std::istringstream in(line);
    std::string word;
    in >> word;
    if (word == "open") {
      size_t n = 0;
      in >> n;
      open(std::min(n, targets_->list.size()));
    } else if (word == "trickle") {
      long window = 0, period = 0;
      in >> window >> period;
      trickle(std::chrono::milliseconds(window), std::chrono::milliseconds(std::max(period, 10L)));
    } else if (word == "quit") {
      quit_ = true;
    } else {
      reply(Json().str("event", "error").str("what", "unknown command: " + line));
    }
  }

  void reply(const Json& j) {
    std::printf("%s\n", j.text().c_str());
    std::fflush(stdout);
  }

  // --- open --------------------------------------------------------------------------------

  void open(size_t want) {
    auto start = Clock::now();
    size_t requested = want > held_.size() ? want - held_.size() : 0;
    size_t done_before = attached_ + failed_;
    while (attached_ + failed_ - done_before < requested) {
      while (in_flight_ < o_.concurrency && held_.size() < want) start_one();
      loop_.run_once(std::chrono::milliseconds(100));
      if (Clock::now() - start > std::chrono::seconds(o_.timeout_s) * (1 + requested / 10)) break;
    }
    reply(Json()
              .str("event", "opened")
              .integer("requested", static_cast<int64_t>(want))
              .integer("attached", static_cast<int64_t>(alive()))
              .integer("failed", static_cast<int64_t>(failed_))
              .integer("dead", static_cast<int64_t>(dead_))
              .counts("failures", failures_)
              .num("seconds", ms_between(start, Clock::now()) / 1000));
  }

  void start_one() {
    auto h = std::make_unique<Held>();
    Held* raw = h.get();
    h->conn =
        std::make_unique<Conn>(loop_, targets_->list[held_.size()], make_token(),
                               Conn::Handlers{[this, raw](Conn&) { on_attached(*raw); },
                                              [this, raw](Conn&, std::string_view d) { on_data(*raw, d); },
                                              [this, raw](Conn& c) { on_ended(*raw, c.error()); }});
    h->login_timer = loop_.add_timer(std::chrono::seconds(o_.timeout_s), "login timeout", [this, raw] {
      raw->login_timer = 0;
      raw->conn->close();
      on_ended(*raw, "login timeout");
    });
    held_.push_back(std::move(h));
    ++in_flight_;
    raw->conn->start();
  }

  void on_attached(Held& h) {
    loop_.cancel_timer(h.login_timer);
    h.login_timer = 0;
    h.attached = true;
    ++attached_;
    --in_flight_;
  }

  void on_ended(Held& h, const std::string& why) {
    if (h.login_timer) loop_.cancel_timer(h.login_timer);
    h.login_timer = 0;
    if (h.attached) {
      ++dead_;  // an open session the server ended: an error
      h.attached = false;
      --attached_;
    } else {
      ++failed_;
      --in_flight_;
    }
    h.waiting = false;
    ++failures_[why];
  }

  size_t alive() const { return attached_; }

  // --- trickle -----------------------------------------------------------------------------

  void on_data(Held& h, std::string_view d) {
    if (!h.waiting) return;
    h.got.append(d);
    if (h.got.size() >= h.expect.size() && h.got.ends_with(h.expect)) {
      rtt_.add(ms_between(h.sent, Clock::now()));
      h.waiting = false;
      h.got.clear();
    }
  }

  void type(Held& h) {
    if (!h.attached) return;
    if (h.waiting) {
      if (Clock::now() - h.sent < kEchoTimeout) return;  // still due; no second key on top
      ++lost_;
      h.waiting = false;
    }
    h.expect = h.letter ? "x" : "\b \b";
    h.got.clear();
    h.sent = Clock::now();
    h.waiting = true;
    ++keystrokes_;
    bool sent = h.conn->send(h.letter ? "x" : "\x7f");
    h.letter = !h.letter;
    if (!sent && h.attached) h.waiting = false;
  }

  void schedule(Held& h, std::chrono::milliseconds delay, std::chrono::milliseconds period,
                Clock::time_point end) {
    if (Clock::now() + delay >= end) return;
    loop_.add_timer(delay, "typing", [this, &h, period, end] {
      type(h);
      schedule(h, period, period, end);
    });
  }

  void trickle(std::chrono::milliseconds window, std::chrono::milliseconds period) {
    rtt_ = Samples{};
    lost_ = keystrokes_ = 0;
    size_t dead_before = dead_;
    auto start = Clock::now();
    auto end = start + window;
    std::uniform_int_distribution<long> phase(0, period.count() - 1);
    for (auto& h : held_) {
      if (h->attached) schedule(*h, std::chrono::milliseconds(phase(rng_)), period, end);
    }
    while (Clock::now() < end) loop_.run_once(std::chrono::milliseconds(100));
    auto drain_end = Clock::now() + kEchoTimeout;
    auto pending = [&] {
      size_t n = 0;
      for (auto& h : held_) n += h->attached && h->waiting;
      return n;
    };
    while (pending() > 0 && Clock::now() < drain_end) loop_.run_once(std::chrono::milliseconds(100));
    size_t still = pending();
    for (auto& h : held_) h->waiting = false;
    reply(Json()
              .str("event", "trickled")
              .integer("sessions", static_cast<int64_t>(alive()))
              .integer("keystrokes", keystrokes_)
              .integer("lost", lost_ + static_cast<int64_t>(still))
              .integer("dead", static_cast<int64_t>(dead_ - dead_before))
              .counts("failures", failures_)
              .num("seconds", ms_between(start, Clock::now()) / 1000)
              .stats("rtt_ms", rtt_));
  }

  const Options& o_;
  std::unique_ptr<Targets> targets_;
  EventLoop loop_;
  std::vector<std::unique_ptr<Held>> held_;
  std::string input_;
  bool quit_ = false;
  size_t in_flight_ = 0, attached_ = 0, failed_ = 0, dead_ = 0;
  std::map<std::string, int> failures_;
  Samples rtt_;
  int64_t lost_ = 0, keystrokes_ = 0;
  std::mt19937 rng_{12345};
};

}  // namespace

int run_hold(const Options& o) {
  Holder holder(o, load_targets(o));
  return holder.run();
}

}  // namespace xcg::bench
