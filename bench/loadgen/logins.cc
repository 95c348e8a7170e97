// Login modes: `latency` (one login at a time, each timed phase by phase) and `rate`
// (closed-loop logins at a fixed concurrency for a fixed time, counting every failure).
#include <cstdio>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

#include "bench/loadgen/options.h"
#include "bench/loadgen/stats.h"

namespace xcg::bench {
namespace {

constexpr auto kPauseBetweenLogins = std::chrono::milliseconds(30);

}  // namespace

int run_latency(const Options& o) {
  auto targets = load_targets(o);
  EventLoop loop;
  Samples connected, authed, shell, first_byte, attached;
  std::map<std::string, int> failures;
  for (unsigned i = 0; i < o.logins; ++i) {
    const Target& t = targets->list[i % targets->list.size()];
    bool finished = false;
    Conn conn(loop, t, make_token(),
              {[&](Conn&) { finished = true; }, nullptr, [&](Conn&) { finished = true; }});
    conn.start();
    loop.run_until([&] { return finished; }, std::chrono::seconds(o.timeout_s));
    if (!conn.attached()) {
      ++failures[conn.alive() ? fmt::format("timeout in {}", conn.stage()) : conn.error()];
      continue;
    }
    const ssh_client::Timings& lt = conn.times();
    connected.add(ms_between(lt.start, lt.connected));
    authed.add(ms_between(lt.start, lt.authed));
    shell.add(ms_between(lt.start, lt.started));
    first_byte.add(ms_between(lt.start, lt.first_byte));
    attached.add(ms_between(lt.start, conn.attached_at()));
    conn.close();
    // Let the server tear the login down before the next one is timed.
    loop.run_until([] { return false; }, kPauseBetweenLogins);
  }
  Json j;
  j.str("mode", "latency")
      .integer("logins", o.logins)
      .integer("ok", static_cast<int64_t>(attached.count()))
      .counts("failures", failures)
      .stats("kex_ms", connected)
      .stats("auth_ms", authed)
      .stats("shell_ms", shell)
      .stats("first_byte_ms", first_byte)
      .stats("attached_ms", attached)
      .samples("attached_samples", attached);
  std::printf("%s\n", j.text().c_str());
  return 0;
}

namespace {

// One thread's share of a `rate` run: its own loop, its own domains, C/T logins in flight.
class RateWorker {
 public:
  RateWorker(std::vector<const Target*> targets, unsigned concurrency, Clock::time_point end,
             std::chrono::seconds timeout)
      : targets_(std::move(targets)), concurrency_(concurrency), end_(end), timeout_(timeout) {}

  void run() {
    launch();
    // In-flight logins after the end get their own timeout to finish (and are counted).
    auto hard_end = end_ + timeout_ + std::chrono::seconds(1);
    while (!live_.empty() && Clock::now() < hard_end) {
      loop_.run_once(std::chrono::milliseconds(100));
      graveyard_.clear();
      launch();
    }
    for (auto& [conn, entry] : live_) ++failures[fmt::format("unfinished in {}", conn->stage())];
    live_.clear();
  }

  Samples latency;    // connect → console answers, under load
  uint64_t ok = 0;    // logins attached before the end
  uint64_t late = 0;  // attached after the end (not counted in the rate)
  std::map<std::string, int> failures;

 private:
  struct Entry {
    std::unique_ptr<Conn> conn;
    EventLoop::TimerId timer = 0;
    size_t target = 0;
  };

  void launch() {
    while (live_.size() < concurrency_ && Clock::now() < end_) {
      size_t pick = next_free_target();
      if (pick == targets_.size()) return;
      auto conn = std::make_unique<Conn>(
          loop_, *targets_[pick], make_token(),
          Conn::Handlers{[this](Conn& c) { on_attached(c); }, nullptr, [this](Conn& c) { on_ended(c); }});
      Conn* raw = conn.get();
      Entry e{std::move(conn), 0, pick};
      e.timer = loop_.add_timer(timeout_, "login timeout", [this, raw] { on_timeout(raw); });
      busy_.insert(pick);
      live_.emplace(raw, std::move(e));
      raw->start();
    }
  }

  // Round robin over the domains, skipping one still busy: a domain never has two of our
  // logins at once (on the baseline two console clients would split its output).
  size_t next_free_target() {
    for (size_t tries = 0; tries < targets_.size(); ++tries) {
      size_t i = cursor_++ % targets_.size();
      if (!busy_.contains(i)) return i;
    }
    return targets_.size();
  }

  void retire(Conn* c, bool cancel_timer) {
    auto it = live_.find(c);
    if (it == live_.end()) return;
    if (cancel_timer) loop_.cancel_timer(it->second.timer);
    busy_.erase(it->second.target);
    c->close();
    graveyard_.push_back(std::move(it->second.conn));
    live_.erase(it);
  }

  void on_attached(Conn& c) {
    auto done = c.attached_at();
    if (done <= end_) {
      ++ok;
      latency.add(ms_between(c.times().start, done));
    } else {
      ++late;
    }
    retire(&c, true);
  }

  void on_ended(Conn& c) {
    ++failures[c.error()];
    retire(&c, true);
  }

  void on_timeout(Conn* c) {
    ++failures[fmt::format("timeout in {}", c->stage())];
    retire(c, false);
  }

  EventLoop loop_;
  std::vector<const Target*> targets_;
  unsigned concurrency_;
  Clock::time_point end_;
  std::chrono::seconds timeout_;
  std::unordered_map<Conn*, Entry> live_;
  std::vector<std::unique_ptr<Conn>> graveyard_;
  std::set<size_t> busy_;
  size_t cursor_ = 0;
};

}  // namespace

int run_rate(const Options& o) {
  auto targets = load_targets(o);
  unsigned threads = std::min<unsigned>(o.threads, static_cast<unsigned>(targets->list.size()));
  std::vector<std::vector<const Target*>> shares(threads);
  for (size_t i = 0; i < targets->list.size(); ++i) shares[i % threads].push_back(&targets->list[i]);
  double cpu_before = cpu_seconds();
  auto start = Clock::now();
  auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_s));
  std::vector<std::unique_ptr<RateWorker>> workers;
  for (unsigned t = 0; t < threads; ++t) {
    unsigned c = o.concurrency / threads + (t < o.concurrency % threads ? 1 : 0);
    workers.push_back(
        std::make_unique<RateWorker>(shares[t], std::max(1u, c), end, std::chrono::seconds(o.timeout_s)));
  }
  std::vector<std::thread> running;
  running.reserve(workers.size());
  for (auto& w : workers) running.emplace_back([&w] { w->run(); });
  for (auto& t : running) t.join();
  Samples latency;
  uint64_t ok = 0, late = 0;
  std::map<std::string, int> failures;
  for (auto& w : workers) {
    latency.merge(w->latency);
    ok += w->ok;
    late += w->late;
    for (auto& [why, n] : w->failures) failures[why] += n;
  }
  int failed = 0;
  for (auto& [why, n] : failures) failed += n;
  Json j;
  j.str("mode", "rate")
      .num("duration_s", o.duration_s)
      .integer("concurrency", o.concurrency)
      .integer("threads", threads)
      .integer("ok", static_cast<int64_t>(ok))
      .integer("late", static_cast<int64_t>(late))
      .integer("failed", failed)
      .counts("failures", failures)
      .num("logins_per_s", static_cast<double>(ok) / o.duration_s)
      .stats("latency_ms", latency)
      .num("client_cpu_s", cpu_seconds() - cpu_before)
      .num("wall_s", ms_between(start, Clock::now()) / 1000);
  std::printf("%s\n", j.text().c_str());
  return 0;
}

}  // namespace xcg::bench
