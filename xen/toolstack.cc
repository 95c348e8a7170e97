#include "xen/toolstack.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include "base/child.h"
#include "base/log.h"
#include "base/text.h"
#include "base/unique_fd.h"

namespace xcg::xen {
namespace {

constexpr size_t kMaxStderr = 16 * 1024;  // the first error is near the start
constexpr size_t kMaxReason = 200;
constexpr int kExecFailed = 127;
constexpr std::string_view kExecFailedPrefix = "xcg: cannot execute ";

// Everything the child needs, made before fork so that the child does not allocate. Built in
// place: argv and envp point into it.
struct ExecPlan {
  ExecPlan(const std::string& program, const std::vector<std::string>& args) {
    strings.push_back(program);
    strings.insert(strings.end(), args.begin(), args.end());
    for (auto& s : strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    envp[0] = path_env.data();
  }
  ExecPlan(const ExecPlan&) = delete;
  ExecPlan& operator=(const ExecPlan&) = delete;

  std::vector<std::string> strings;
  std::vector<char*> argv;
  std::string path_env{Toolstack::kPath};
  char* envp[2] = {nullptr, nullptr};
};

// The child gets /dev/null as stdin and stdout and the pipe as stderr, where a failed exec
// says why in the words outcome() looks for.
[[noreturn]] void run_child(const ExecPlan& plan, int null_fd, int err_fd) {
  const int fds[] = {null_fd, null_fd, err_fd};
  ExecSpec spec{.path = plan.argv[0],
                .argv = plan.argv.data(),
                .envp = plan.envp,
                .fds = fds,
                .fd_count = 3,
                .failure_prefix = kExecFailedPrefix.data(),
                .failure_status = kExecFailed};
  exec_child(spec);
}

struct Spawned {
  pid_t pid = -1;
  UniqueFd pidfd;
  UniqueFd err;  // read end of the child's stderr, non-blocking
};

Result<Spawned> spawn(const std::string& program, const std::vector<std::string>& args) {
  ExecPlan plan(program, args);
  UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null_fd) return fail_errno("open /dev/null");
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) < 0) return fail_errno("pipe");
  UniqueFd err_read(pipe_fds[0]), err_write(pipe_fds[1]);
  // The child's end must block: xl does not expect EAGAIN on stderr.
  int flags = ::fcntl(err_write.get(), F_GETFL);
  if (flags < 0 || ::fcntl(err_write.get(), F_SETFL, flags & ~O_NONBLOCK) < 0) return fail_errno("fcntl");

  auto child = start_child([&] { run_child(plan, null_fd.get(), err_write.get()); });
  if (!child) return tl::unexpected(child.error());
  return Spawned{child->pid, std::move(child->pidfd), std::move(err_read)};
}

// Reads what is there without blocking; false once the pipe is closed (or broken).
bool drain(int fd, std::string& into) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      into.append(buf, std::min(static_cast<size_t>(n), kMaxStderr - std::min(kMaxStderr, into.size())));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && errno == EAGAIN;
  }
}

std::string what_ran(const std::string& program, const std::vector<std::string>& args) {
  std::string name = program.substr(program.rfind('/') + 1);
  return args.empty() ? name : name + " " + args.front();
}

Result<void> outcome(const std::string& what, const siginfo_t& info, const std::string& err, bool timed_out,
                     std::chrono::milliseconds timeout) {
  if (timed_out) {
    auto ms = timeout.count();
    std::string limit = ms % 1000 ? fmt::format("{} ms", ms) : fmt::format("{} s", ms / 1000);
    return fail(Errc::timeout, fmt::format("{} did not finish within {}", what, limit));
  }
  if (info.si_code == CLD_EXITED && info.si_status == 0) return {};
  std::string reason = summarize_stderr(err);
  if (info.si_code == CLD_EXITED && info.si_status == kExecFailed && reason.starts_with(kExecFailedPrefix))
    return fail(Errc::unavailable, reason.substr(5));  // without "xcg: "
  if (!reason.empty()) return fail(Errc::system, reason);
  if (info.si_code == CLD_EXITED)
    return fail(Errc::system, fmt::format("{} failed (exit status {})", what, info.si_status));
  const char* sig = sigabbrev_np(info.si_status);
  return fail(Errc::system, fmt::format("{} was killed by SIG{}", what, sig ? sig : "?"));
}

}  // namespace

struct Toolstack::Child {
  std::string what;
  Spawned process;
  std::string err;
  bool timed_out = false;
  Done done;
  // After `process`: they end before its descriptors close, and with the Child they refer to.
  EventLoop::Watch exit_watch;
  EventLoop::Watch err_watch;
  EventLoop::Timer timer;
};

Toolstack::Toolstack(EventLoop& loop, std::string program, std::chrono::milliseconds timeout)
    : loop_(loop), program_(std::move(program)), timeout_(timeout) {}

// The children's registrations end with them (their `done` is not called).
Toolstack::~Toolstack() {
  for (auto& [id, child] : children_)
    log::warn("xen: leaving {} (pid {}) to finish on its own", child->what, child->process.pid);
}

void Toolstack::run_async(const std::vector<std::string>& args, Done done) {
  auto spawned = spawn(program_, args);
  if (!spawned) return report_failed_start(spawned.error(), std::move(done));
  uint64_t id = next_id_++;
  auto child = std::make_unique<Child>();
  child->what = what_ran(program_, args);
  child->process = std::move(*spawned);
  child->done = std::move(done);
  Child& c = *child;
  children_.emplace(id, std::move(child));
  watch_child(id, c);
}

// Still from the loop, as promised.
void Toolstack::report_failed_start(Error error, Done done) {
  uint64_t id = next_id_++;
  failed_starts_[id] = loop_.timer(std::chrono::milliseconds(0), "toolstack failed to start",
                                   [this, id, done = std::move(done), e = std::move(error)] {
                                     failed_starts_.erase(id);
                                     done(tl::unexpected(e));
                                   });
}

void Toolstack::watch_child(uint64_t id, Child& c) {
  c.exit_watch =
      loop_.watch(c.process.pidfd.get(), EPOLLIN, c.what + " exit", [this, id](uint32_t) { on_exit(id); });
  c.err_watch = loop_.watch(c.process.err.get(), EPOLLIN, c.what + " stderr", [&c](uint32_t) {
    if (drain(c.process.err.get(), c.err)) return;
    c.err_watch.reset();  // closed: a hung-up pipe would wake the loop forever
    c.process.err.reset();
  });
  c.timer = loop_.timer(timeout_, c.what + " timeout", [&c] {
    c.timed_out = true;
    if (::kill(c.process.pid, SIGKILL) < 0)
      log::warn("xen: kill {}: {}", c.process.pid, std::strerror(errno));
  });
}

void Toolstack::on_exit(uint64_t id) {
  auto it = children_.find(id);
  if (it == children_.end()) return;
  Child& c = *it->second;
  auto info = wait_child(c.process.pidfd.get(), false);
  if (info && info->si_pid == 0) return;  // not exited after all
  if (c.process.err) drain(c.process.err.get(), c.err);
  Result<void> result =
      info ? outcome(c.what, *info, c.err, c.timed_out, timeout_) : tl::unexpected(info.error());
  Done done = std::move(c.done);
  children_.erase(it);  // its registrations end with it
  done(std::move(result));
}

namespace {

// "libxl: error: libxl_create.c:1234:do_domain_create: Domain 7:cannot make domain: -3"
// → "Domain 7:cannot make domain: -3"
std::string_view strip_libxl_prefix(std::string_view line) {
  constexpr std::string_view kError = "libxl: error: ";
  line.remove_prefix(kError.size());
  size_t colon = line.find(": ");
  if (colon == std::string_view::npos) return line;
  std::string_view position = line.substr(0, colon);
  if (position.find(".c:") == std::string_view::npos || position.find(' ') != std::string_view::npos)
    return line;
  return line.substr(colon + 2);
}

}  // namespace

std::string summarize_stderr(std::string_view text) {
  std::string_view first_error, last;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty() || line.starts_with("Parsing config from ")) continue;
    if (first_error.empty() && line.starts_with("libxl: error: ")) first_error = strip_libxl_prefix(line);
    last = line;
  }
  std::string_view reason = first_error.empty() ? last : first_error;
  return printable(reason, kMaxReason) + (reason.size() > kMaxReason ? "..." : "");
}

}  // namespace xcg::xen
