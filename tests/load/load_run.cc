#include "tests/load/load_run.h"

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "tests/load/console_check.h"
#include "tests/load/ssh_client/client.h"
#include "tests/load/ssh_client/handles.h"

namespace xcg::load {
namespace {

using ssh_client::Client;
using Clock = ssh_client::Clock;
using Seconds = std::chrono::duration<double>;

constexpr auto kPollStep = std::chrono::milliseconds(10);
// Every client is stepped this often even without an event: a safety net for anything
// libssh buffered without the socket saying so.
constexpr auto kSweep = std::chrono::milliseconds(100);
// A short attach stays this long after its numbers arrived, so that it also gets live output.
constexpr auto kBriefLive = std::chrono::milliseconds(300);
constexpr auto kProgressEvery = std::chrono::seconds(5);
constexpr char kDetach = 0x1d;  // Ctrl-]

// How far a viewer has got: (reboots seen, last number). Ordered.
using Position = std::pair<uint64_t, uint64_t>;

struct Shared {
  explicit Shared(unsigned threads) : end_of_run(threads) {}
  Clock::time_point start = Clock::now();
  std::barrier<> end_of_run;
  std::mutex mu;
  std::map<std::string, Position> head;  // per domain, the furthest any viewer got by the end
  std::vector<std::string> failures;
  std::atomic<unsigned> viewers_running{0};
  std::atomic<unsigned> viewers_ok{0};
  std::atomic<unsigned> logins_done{0};
  std::atomic<unsigned> churn_started{0};
  std::atomic<uint64_t> numbers{0};
  std::atomic<unsigned> replays_from_boot{0};  // attaches whose replay began at the boot
  std::atomic<unsigned> replays_cut{0};        // ... began later (the replay limit cut it)
  // When the reboot login began, in ns since start; -1 before. A viewer whose hint came
  // earlier was attached when the domain rebooted.
  std::atomic<int64_t> reboot_launched_ns{-1};

  void record_failure(std::string what) {
    std::lock_guard lock(mu);
    failures.push_back(std::move(what));
  }
};

enum class Kind { viewer, brief_attach, status, reboot };

std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::viewer: return "viewer";
    case Kind::brief_attach: return "short attach";
    case Kind::status: return "status";
    case Kind::reboot: return "reboot";
  }
  return "?";
}

std::string_view command_of(Kind k) {
  switch (k) {
    case Kind::viewer:
    case Kind::brief_attach: return "console";
    case Kind::status: return "status";
    case Kind::reboot: return "reboot";
  }
  return "";
}

struct Task {
  Task(Kind kind, unsigned id, std::string domain)
      : kind(kind), id(id), domain(domain), check(std::move(domain)) {}

  Kind kind;
  unsigned id;
  std::string domain;
  ConsoleCheck check;
  std::unique_ptr<Client> client;
  Clock::time_point started{};
  std::optional<Clock::time_point> running_since;
  std::optional<Clock::time_point> attached_at;  // when the session's hint arrived
  bool detach_sent = false;
  bool leaving = false;  // the test ended it on purpose
  std::string output;    // status and reboot: what the command printed

  std::string name() const { return fmt::format("{} #{} of {}", kind_name(kind), id, domain); }
};

class Worker {
 public:
  Worker(const LoadSettings& settings, unsigned index, Shared& shared)
      : settings_(settings), index_(index), shared_(shared), next_viewer_(index), next_churn_(index) {}

  void run();

 private:
  bool load_keys();
  void launch_due(double t);
  void launch(Kind kind, unsigned id, const std::string& domain);
  void step(Task& task, Clock::time_point now);
  void on_output(Task& task, std::string_view bytes);
  void after_step(Task& task, Clock::time_point now);
  bool finish(Task& task);  // true: the task is over (recorded)
  void end_of_run();
  bool reached_head(const Task& task) const;
  void fail(const Task& task, std::string_view what);
  double elapsed(Clock::time_point now) const { return Seconds(now - shared_.start).count(); }

  const LoadSettings& settings_;
  unsigned index_;
  Shared& shared_;
  std::map<std::string, ssh_client::Key> keys_;
  std::vector<std::unique_ptr<Task>> tasks_;
  unsigned next_viewer_;
  unsigned next_churn_;
  bool reboot_launched_ = false;
  bool draining_ = false;
  Clock::time_point drain_deadline_{};
};

bool Worker::load_keys() {
  for (const auto& domain : settings_.domains) {
    std::string path = settings_.key_dir + "/" + domain;
    ssh_client::Key key = ssh_client::load_private_key(path);
    if (!key) {
      shared_.record_failure(fmt::format("cannot load the key {}", path));
      return false;
    }
    keys_[domain] = std::move(key);
  }
  return true;
}

// Viewer i attaches at ramp * i / viewers, to domain i mod D; churn login j starts at
// j / rate, alternating status and short attaches. Each worker takes every threads-th.
void Worker::launch_due(double t) {
  const auto& s = settings_;
  const unsigned threads = s.threads;
  const size_t domains = s.domains.size();
  // Logins still in their handshake share the CPU with each other: past a few dozen, they all
  // get slow together and none finishes in time. Later ones wait for a slot (the schedule
  // catches up), so the rate drops rather than every login failing.
  size_t setting_up = std::count_if(tasks_.begin(), tasks_.end(), [](const auto& task) {
    return !task->running_since && !task->client->finished();
  });
  size_t slots = std::max<size_t>(1, s.max_logging_in / threads);
  auto room = [&] { return setting_up < slots; };
  while (room() && next_viewer_ < s.viewers && s.ramp_s * next_viewer_ / s.viewers <= t) {
    ++setting_up;
    launch(Kind::viewer, next_viewer_, s.domains[next_viewer_ % domains]);
    next_viewer_ += threads;
  }
  while (room() && s.churn_per_second > 0 && next_churn_ / s.churn_per_second <= t && t < s.duration_s) {
    ++setting_up;
    unsigned j = next_churn_;
    // Consecutive logins go to different domains; both kinds reach every domain.
    const std::string& domain = s.domains[(j / 2 + j % 2 * 7) % domains];
    launch(j % 2 ? Kind::brief_attach : Kind::status, j, domain);
    ++shared_.churn_started;
    next_churn_ += threads;
  }
  if (index_ == 0 && !reboot_launched_ && !s.reboot_domain.empty() && t >= s.reboot_at_s) {
    reboot_launched_ = true;
    shared_.reboot_launched_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - shared_.start).count();
    launch(Kind::reboot, 0, s.reboot_domain);
  }
}

void Worker::launch(Kind kind, unsigned id, const std::string& domain) {
  auto task = std::make_unique<Task>(kind, id, domain);
  Task* raw = task.get();
  ssh_client::Options options{.port = settings_.port,
                              .user = domain,
                              .key = keys_.at(domain).get(),
                              .command = std::string(command_of(kind))};
  task->client = std::make_unique<Client>(options, [this, raw](std::string_view b) { on_output(*raw, b); });
  task->started = Clock::now();
  tasks_.push_back(std::move(task));
}

void Worker::on_output(Task& task, std::string_view bytes) {
  if (task.kind == Kind::status || task.kind == Kind::reboot) {
    task.output.append(bytes);
    return;
  }
  uint64_t before = task.check.numbers_seen();
  task.check.feed(bytes);
  if (!task.attached_at && task.check.saw_hint()) task.attached_at = Clock::now();
  shared_.numbers += task.check.numbers_seen() - before;
}

void Worker::step(Task& task, Clock::time_point now) {
  task.client->step();
  after_step(task, now);
}

void Worker::after_step(Task& task, Clock::time_point now) {
  Client& c = *task.client;
  if (c.phase() == Client::Phase::running && !task.running_since) {
    task.running_since = now;
    if (task.kind == Kind::viewer) ++shared_.viewers_running;
  }
  if (task.kind == Kind::brief_attach && !task.detach_sent && task.running_since &&
      task.check.numbers_seen() >= settings_.brief_attach_lines && now - *task.running_since >= kBriefLive) {
    task.detach_sent = true;
    if (!c.send(std::string_view(&kDetach, 1))) fail(task, "could not send Ctrl-]");
  }
  if (task.kind == Kind::viewer && draining_ && !task.leaving && reached_head(task)) {
    task.leaving = true;
    c.disconnect();
  }
}

bool Worker::reached_head(const Task& task) const {
  if (!task.attached_at) return false;
  auto it = shared_.head.find(task.domain);
  Position at{task.check.reboots(), task.check.last_number()};
  return it == shared_.head.end() || at >= it->second;
}

void Worker::fail(const Task& task, std::string_view what) {
  shared_.record_failure(fmt::format("{} (started at {:.1f}s): {}", task.name(),
                                     Seconds(task.started - shared_.start).count(), what));
}

// Records the outcome of a finished task; true if it is over.
bool Worker::finish(Task& task) {
  Client& c = *task.client;
  auto now = Clock::now();
  bool timed_out = !task.running_since && now - task.started > Seconds(settings_.login_timeout_s);
  bool brief_too_long =
      task.kind != Kind::viewer && now - task.started > Seconds(2 * settings_.login_timeout_s);
  if (!c.finished() && !timed_out && !brief_too_long) return false;
  if (!task.check.ok()) fail(task, task.check.error());
  if (auto first = task.check.first_number())
    ++(*first == 1 ? shared_.replays_from_boot : shared_.replays_cut);
  if (c.phase() == Client::Phase::failed) {
    fail(task, c.error());
    return true;
  }
  if (timed_out) {
    fail(task, fmt::format("not running after {}s (still {})", settings_.login_timeout_s, c.phase_name()));
    return true;
  }
  if (brief_too_long) {
    fail(task, fmt::format("not over after {}s (still {}, {} numbers seen)", 2 * settings_.login_timeout_s,
                           c.phase_name(), task.check.numbers_seen()));
    return true;
  }
  switch (task.kind) {
    case Kind::viewer: {
      if (!task.attached_at) {
        fail(task, "never attached");
        break;
      }
      if (!task.leaving) {
        fail(task, fmt::format("the gateway ended the session at {:.1f}s (exit status {})", elapsed(now),
                               c.exit_status().value_or(-1)));
        break;
      }
      int64_t reboot_ns = shared_.reboot_launched_ns;
      bool rebooted = task.domain == settings_.reboot_domain && reboot_ns >= 0;
      bool attached_before = rebooted && task.attached_at &&
                             *task.attached_at < shared_.start + std::chrono::nanoseconds(reboot_ns);
      // A viewer that attached while the reboot was under way may or may not have seen it.
      uint64_t reboots = task.check.reboots();
      if (attached_before ? reboots != 1 : rebooted ? reboots > 1 : reboots != 0)
        fail(task, fmt::format("saw {} reboots, expected {}", reboots,
                               attached_before ? "1"
                               : rebooted      ? "0 or 1"
                                               : "0"));
      else if (task.check.ok()) ++shared_.viewers_ok;
      break;
    }
    case Kind::brief_attach:
      if (!task.attached_at)
        fail(task, fmt::format("the console was refused: exit status {}, stderr {:?}",
                               c.exit_status().value_or(-1), c.stderr_text()));
      else if (c.exit_status() != 0)
        fail(task, fmt::format("exit status {} after Ctrl-] (want 0); stderr {:?}",
                               c.exit_status().value_or(-1), c.stderr_text()));
      else if (task.check.numbers_seen() < settings_.brief_attach_lines)
        fail(task, fmt::format("only {} numbers before the end", task.check.numbers_seen()));
      break;
    case Kind::status: {
      std::regex line(fmt::format("^{}: [a-z ]+(, domid [0-9]+)?[^\n]*\r?\n$", task.domain));
      if (c.exit_status() != 0 || !std::regex_match(task.output, line))
        fail(task, fmt::format("exit status {}, output {:?}, stderr {:?}", c.exit_status().value_or(-1),
                               task.output, c.stderr_text()));
      break;
    }
    case Kind::reboot:
      if (c.exit_status() != 0)
        fail(task, fmt::format("exit status {}, output {:?}, stderr {:?}", c.exit_status().value_or(-1),
                               task.output, c.stderr_text()));
      break;
  }
  ++shared_.logins_done;
  return true;
}

// The run is over: every viewer must now reach the furthest point any viewer of its domain
// had reached at this moment (the live head), then leave.
void Worker::end_of_run() {
  {
    std::lock_guard lock(shared_.mu);
    for (auto& task : tasks_) {
      if (task->kind != Kind::viewer || !task->check.ok()) continue;
      Position at{task->check.reboots(), task->check.last_number()};
      auto& head = shared_.head[task->domain];
      head = std::max(head, at);
    }
  }
  shared_.end_of_run.arrive_and_wait();
  draining_ = true;
  drain_deadline_ =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(Seconds(settings_.drain_timeout_s));
}

void Worker::run() {
  if (!load_keys()) {
    shared_.end_of_run.arrive_and_drop();
    return;
  }
  std::vector<pollfd> fds;
  std::vector<Task*> owners;
  auto next_sweep = Clock::now();
  for (;;) {
    auto now = Clock::now();
    double t = elapsed(now);
    if (!draining_) {
      if (t < settings_.duration_s) launch_due(t);
      else end_of_run();
    }
    if (draining_ && now > drain_deadline_) {
      for (auto& task : tasks_) {
        if (task->kind != Kind::viewer || task->leaving) continue;
        auto it = shared_.head.find(task->domain);
        Position head = it == shared_.head.end() ? Position{} : it->second;
        fail(*task, fmt::format("did not reach the live head ({} reboots, number {}) within {}s of the end; "
                                "stuck at ({}, {})",
                                head.first, head.second, settings_.drain_timeout_s, task->check.reboots(),
                                task->check.last_number()));
        task->leaving = true;
        task->client->disconnect();
      }
    }
    fds.clear();
    owners.clear();
    for (auto& task : tasks_) {
      int fd = task->client->fd();
      if (fd < 0) continue;
      fds.push_back({fd, task->client->poll_events(), 0});
      owners.push_back(task.get());
    }
    if (::poll(fds.data(), fds.size(), static_cast<int>(kPollStep.count())) < 0 && errno != EINTR) {
      shared_.record_failure(fmt::format("poll: {}", std::strerror(errno)));
      break;
    }
    now = Clock::now();
    bool sweep = now >= next_sweep;
    if (sweep) next_sweep = now + kSweep;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents) step(*owners[i], now);
    }
    for (auto& task : tasks_) {
      auto phase = task->client->phase();
      bool setting_up = phase == Client::Phase::connecting || phase == Client::Phase::handshaking ||
                        phase == Client::Phase::authenticating;
      if (sweep || setting_up || task->client->fd() < 0) step(*task, now);
    }
    std::erase_if(tasks_, [this](const auto& task) { return finish(*task); });
    if (draining_ && tasks_.empty()) break;
  }
}

}  // namespace

int run_load(const LoadSettings& settings) {
  Shared shared(settings.threads);
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned i = 0; i < settings.threads; ++i) {
    workers.push_back(std::make_unique<Worker>(settings, i, shared));
    threads.emplace_back([w = workers.back().get()] { w->run(); });
  }
  // Progress, until every worker is done.
  std::mutex done_mu;
  std::condition_variable done_cv;
  bool done = false;
  std::thread progress([&] {
    for (;;) {
      {
        std::unique_lock lock(done_mu);
        if (done_cv.wait_for(lock, kProgressEvery, [&] { return done; })) return;
      }
      size_t failures;
      {
        std::lock_guard lock(shared.mu);
        failures = shared.failures.size();
      }
      fmt::print("{:5.1f}s: {} viewers attached, {} logins done, {} numbers checked, {} failures\n",
                 Seconds(Clock::now() - shared.start).count(), shared.viewers_running.load(),
                 shared.logins_done.load(), shared.numbers.load(), failures);
      std::fflush(stdout);
    }
  });
  for (auto& t : threads) t.join();
  {
    std::lock_guard lock(done_mu);
    done = true;
  }
  done_cv.notify_all();
  progress.join();

  fmt::print("viewers: {} of {} attached to the end and received every line\n", shared.viewers_ok.load(),
             settings.viewers);
  fmt::print("logins: {} finished; numbers checked: {}\n", shared.logins_done.load(), shared.numbers.load());
  fmt::print("churn: {} of {} planned logins started\n", shared.churn_started.load(),
             static_cast<unsigned>(settings.churn_per_second * settings.duration_s));
  fmt::print("replays: {} began at a boot's start, {} mid-boot\n", shared.replays_from_boot.load(),
             shared.replays_cut.load());
  for (const auto& domain : settings.domains) {
    Position head = shared.head[domain];
    fmt::print("head of {}: {} reboots, number {}\n", domain, head.first, head.second);
    if (head == Position{0, 0})
      shared.failures.push_back(fmt::format("no viewer of {} received anything", domain));
  }
  if (shared.failures.empty() && shared.viewers_ok == settings.viewers) {
    fmt::print("load: ok\n");
    return 0;
  }
  fmt::print("load: FAILED, {} failures\n", shared.failures.size());
  for (const auto& f : shared.failures) fmt::print("FAIL {}\n", f);
  return 1;
}

}  // namespace xcg::load
