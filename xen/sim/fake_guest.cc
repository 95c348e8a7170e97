// The built-in fake guest. It runs on a raw pty, like a kernel's serial console, so it does its
// own echo, line editing and CRLF.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "base/unique_fd.h"
#include "xen/sim/sim_hypervisor.h"

namespace xcg::xen {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kKernel = "6.1.0-xcg-sim";
constexpr uint64_t kMaxSeq = 10'000'000;
constexpr size_t kFlushAt = 64 * 1024;
constexpr size_t kMaxLine = 4096;
constexpr size_t kMaxPending = 1 << 20;  // stop reading input beyond this much typed ahead
constexpr auto kPowerOffWrite = std::chrono::seconds(1);
constexpr std::string_view kPowerDown = "\r\n[  OK  ] Reached target Power-Off.\r\nreboot: Power down\r\n";

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

// Control bytes as a terminal shows them: ^C, ^[, ^?.
std::string visible(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (is_control(c)) {
      out += '^';
      out += static_cast<char>(c ^ 0x40);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

// What Linux prints for a SysRq key (drivers/tty/sysrq.c), for the keys people use.
std::string sysrq_message(char key) {
  switch (key) {
    case 'h':
      return "sysrq: HELP : loglevel(0-9) reboot(b) crash(c) show-all-locks(d) "
             "terminate-all-tasks(e) memory-full-oom-kill(f) kill-all-tasks(i) "
             "thaw-filesystems(j) sak(k) show-backtrace-all-active-cpus(l) "
             "show-memory-usage(m) nice-all-RT-tasks(n) poweroff(o) show-registers(p) "
             "show-all-timers(q) unraw(r) sync(s) show-task-states(t) unmount(u) "
             "show-blocked-tasks(w) dump-ftrace-buffer(z)";
    case 's': return "sysrq: Emergency Sync";
    case 'u': return "sysrq: Emergency Remount R/O";
    case 't': return "sysrq: Show State";
    case 'w': return "sysrq: Show Blocked State";
    case 'm': return "sysrq: Show Memory";
    case 'b': return "sysrq: Resetting";
    case 'c': return "sysrq: Trigger a crash";
    default:
      if (key >= '0' && key <= '9')
        return fmt::format("sysrq: Changing Loglevel\r\nsysrq: Loglevel set to {}", key);
      return fmt::format("sysrq: SysRq key '{}' received", key);
  }
}

class FakeGuest {
 public:
  FakeGuest(std::string name, std::string domid, int signal_fd)
      : name_(std::move(name)), domid_(std::move(domid)), signal_fd_(signal_fd) {}

  // Returns the exit status: 0 for a power-off, 1 for a panic.
  int run() {
    boot();
    while (flush() && !exit_status_) {
      if (!pending_.empty()) {
        feed(std::exchange(pending_, {}));
      } else if (input_closed_) {
        break;
      } else {
        poll_once(false, -1);
      }
    }
    if (term_requested_ && !hung_up_ && !exit_status_) {
      // Nobody may be reading the console; a full pty must not hold up the power-off.
      powering_off_ = true;
      flush_deadline_ = Clock::now() + kPowerOffWrite;
      out_ += kPowerDown;
      flush();
      return 0;
    }
    return exit_status_.value_or(0);
  }

 private:
  enum class Mode { login, shell };

  bool must_stop() const { return hung_up_ || (term_requested_ && !powering_off_); }

  void boot() {
    booted_ = Clock::now();
    out_ += fmt::format(
        "\r\n[    0.000000] Booting fake guest {} (domid {})\r\n"
        "[    0.010000] Linux version {}\r\n"
        "[  OK  ] Reached target Multi-User System.\r\n",
        name_, domid_, kKernel);
    login_banner();
  }

  void login_banner() {
    mode_ = Mode::login;
    out_ += fmt::format("\r\nDebian GNU/Linux 12 {} hvc0\r\n\r\n{} login: ", name_, name_);
  }

  void prompt() {
    if (mode_ == Mode::login) out_ += name_ + " login: ";
    else out_ += name_ + ":~# ";
  }

  void feed(const std::string& bytes) {
    for (char c : bytes) {
      on_byte(static_cast<unsigned char>(c));
      if (exit_status_ || must_stop()) return;
    }
  }

  void on_byte(unsigned char c) {
    bool after_cr = std::exchange(last_was_cr_, c == '\r');
    switch (c) {
      case '\r': end_line(); return;
      case '\n':
        if (!after_cr) end_line();  // CR LF is one line end
        return;
      case 0x7f:
      case 0x08: erase_char(); return;
      case 0x03:
        line_.clear();
        out_ += "^C\r\n";
        prompt();
        return;
    }
    if (line_.size() >= kMaxLine) {
      out_ += '\a';
      return;
    }
    line_ += static_cast<char>(c);
    out_ += visible(std::string_view(line_).substr(line_.size() - 1));
  }

  void erase_char() {
    if (line_.empty()) return;
    if (is_control(static_cast<unsigned char>(line_.back()))) {
      line_.pop_back();
      out_ += "\b \b\b \b";  // it was shown as two columns, ^X
      return;
    }
    // A UTF-8 character takes one column however many bytes it has.
    while (line_.size() > 1 && (static_cast<unsigned char>(line_.back()) & 0xC0) == 0x80) line_.pop_back();
    line_.pop_back();
    out_ += "\b \b";
  }

  void end_line() {
    out_ += "\r\n";
    std::string line = std::exchange(line_, {});
    if (mode_ == Mode::login) login(line);
    else run_command(line);
  }

  void login(std::string_view line) {
    auto words = split_words(line);
    if (words.empty()) {
      prompt();
      return;
    }
    mode_ = Mode::shell;
    out_ += fmt::format("Linux {} {}\r\n", name_, kKernel);
    prompt();
  }

  void run_command(std::string_view line) {
    auto words = split_words(line);
    if (words.empty()) return prompt();
    std::string_view cmd = words[0];
    std::vector<std::string_view> args(words.begin() + 1, words.end());
    if (cmd == "echo") {
      out_ += visible(fmt::format("{}", fmt::join(args, " "))) + "\r\n";
    } else if (cmd == "seq") {
      seq(args);
    } else if (cmd == "uname") {
      bool all = !args.empty() && args[0] == "-a";
      out_ += all ? fmt::format("Linux {} {} #1 SMP x86_64 GNU/Linux\r\n", name_, kKernel) : "Linux\r\n";
    } else if (cmd == "uptime") {
      uptime();
    } else if (cmd == "help") {
      out_ += "commands: echo ARGS, seq N, uname [-a], uptime, panic, poweroff, exit, logout, help\r\n";
    } else if (cmd == "panic") {
      out_ += "Kernel panic - not syncing: requested\r\n";
      exit_status_ = 1;
      return;
    } else if (cmd == "poweroff") {
      out_ += kPowerDown;
      exit_status_ = 0;
      return;
    } else if (cmd == "exit" || cmd == "logout") {
      out_ += "logout\r\n";
      login_banner();
      return;
    } else {
      out_ += fmt::format("-sh: {}: command not found\r\n", visible(cmd));
    }
    prompt();
  }

  void uptime() {
    auto up = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - booted_).count();
    out_ += fmt::format(" up {}:{:02}:{:02},  1 user,  load average: 0.00, 0.00, 0.00\r\n", up / 3600,
                        up / 60 % 60, up % 60);
  }

  void seq(const std::vector<std::string_view>& args) {
    if (args.size() != 1) {
      out_ += "seq: usage: seq N\r\n";
      return;
    }
    uint64_t n = 0;
    std::string_view arg = args[0];
    auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), n);
    if (ec == std::errc::result_out_of_range || (ec == std::errc() && n > kMaxSeq)) {
      out_ += fmt::format("seq: {}: too large (at most {})\r\n", visible(arg), kMaxSeq);
      return;
    }
    if (ec != std::errc() || end != arg.data() + arg.size()) {
      out_ += fmt::format("seq: invalid number '{}'\r\n", visible(arg));
      return;
    }
    interrupt_armed_ = true;
    interrupted_ = false;
    char digits[24];
    for (uint64_t i = 1; i <= n; ++i) {
      auto res = std::to_chars(digits, digits + sizeof digits, i);
      out_.append(digits, res.ptr);
      out_ += "\r\n";
      if (out_.size() >= kFlushAt && (!flush() || interrupted_)) break;
    }
    interrupt_armed_ = false;
    if (std::exchange(interrupted_, false)) out_ += "^C\r\n";
  }

  // Writes out_ completely unless the guest must stop or Ctrl-C interrupts a running command
  // (then the rest is dropped, as a tty flushes its output on an interrupt).
  bool flush() {
    size_t done = 0;
    while (done < out_.size() && !interrupted_) {
      ssize_t n = ::write(STDOUT_FILENO, out_.data() + done, out_.size() - done);
      if (n > 0) {
        done += static_cast<size_t>(n);
      } else if (n < 0 && errno == EAGAIN) {
        int wait_ms = ms_until_deadline();
        if (wait_ms == 0) break;
        poll_once(true, wait_ms);
        if (must_stop()) break;
      } else if (n < 0 && errno != EINTR) {
        hung_up_ = true;  // EIO: nobody holds the console open any more
        break;
      }
    }
    out_.clear();
    // Notices Ctrl-C and SIGTERM during long output even when writes never block.
    if (interrupt_armed_ && !must_stop()) poll_once(false, 0);
    return !must_stop();
  }

  // -1 (no limit) unless a flush deadline is set.
  int ms_until_deadline() const {
    if (!flush_deadline_) return -1;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(*flush_deadline_ - Clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
  }

  // Waits for input, a signal or (if want_write) room on stdout, and takes in what arrived.
  void poll_once(bool want_write, int timeout_ms) {
    pollfd fds[3] = {
        {input_closed_ || pending_.size() >= kMaxPending ? -1 : STDIN_FILENO, POLLIN, 0},
        {signal_fd_, POLLIN, 0},
        {want_write ? STDOUT_FILENO : -1, POLLOUT, 0},
    };
    if (::poll(fds, 3, timeout_ms) < 0) {
      if (errno == EINTR) return;
      std::fprintf(stderr, "fake guest: poll: %s\r\n", std::strerror(errno));
      hung_up_ = true;
      return;
    }
    if (fds[1].revents & POLLIN) read_signal();
    if (fds[0].revents) read_input();
  }

  void read_signal() {
    signalfd_siginfo info{};
    ssize_t n = ::read(signal_fd_, &info, sizeof info);
    if (n != static_cast<ssize_t>(sizeof info)) return;
    if (info.ssi_signo == SIGTERM) term_requested_ = true;
    // The sim delivers SysRq keys as SIGUSR1 with the key as the value, NMIs as SIGUSR2.
    if (info.ssi_signo == SIGUSR1)
      out_ += fmt::format("\r\n{}\r\n", sysrq_message(static_cast<char>(info.ssi_int)));
    if (info.ssi_signo == SIGUSR2) out_ += "\r\nUhhuh. NMI received for unknown reason 00 on CPU 0.\r\n";
  }

  void read_input() {
    char buf[4096];
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n > 0) return take_input(std::string_view(buf, static_cast<size_t>(n)));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    // EOF or EIO. What was typed before still runs; a console that is gone for good also
    // fails the next write.
    input_closed_ = true;
  }

  void take_input(std::string_view bytes) {
    size_t intr = interrupt_armed_ ? bytes.find('\x03') : std::string_view::npos;
    if (intr == std::string_view::npos) {
      pending_.append(bytes);
      return;
    }
    // Like a tty's interrupt: stop the command and drop what was typed ahead of the ^C.
    interrupted_ = true;
    pending_.assign(bytes.substr(intr + 1));
  }

  std::string name_, domid_;
  int signal_fd_;
  Mode mode_ = Mode::login;
  Clock::time_point booted_;
  std::string line_;     // the line being typed
  std::string out_;      // output not yet written
  std::string pending_;  // input read but not handled yet
  bool last_was_cr_ = false;
  bool interrupt_armed_ = false;  // a command is producing output that ^C may stop
  bool interrupted_ = false;
  bool term_requested_ = false;
  bool powering_off_ = false;
  bool hung_up_ = false;  // output cannot be written any more
  bool input_closed_ = false;
  std::optional<int> exit_status_;
  std::optional<Clock::time_point> flush_deadline_;
};

// Puts stdin and stdout into non-blocking mode and restores them on exit, in case they are a
// terminal shared with a shell.
class NonBlockingStdio {
 public:
  bool enable() {
    for (int fd : {STDIN_FILENO, STDOUT_FILENO}) {
      int flags = ::fcntl(fd, F_GETFL);
      if (flags < 0) return false;
      saved_.emplace_back(fd, flags);
    }
    for (auto [fd, flags] : saved_) {
      if (::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return false;
    }
    return true;
  }
  ~NonBlockingStdio() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (::fcntl(it->first, F_SETFL, it->second) < 0) break;  // the console is gone
    }
  }

 private:
  std::vector<std::pair<int, int>> saved_;
};

int fail_start(const char* what) {
  std::fprintf(stderr, "fake guest: %s: %s\r\n", what, std::strerror(errno));
  return 1;
}

}  // namespace

int run_fake_guest() {
  const char* name = std::getenv("XCG_DOMAIN");
  const char* domid = std::getenv("XCG_DOMID");
  // A hang-up or ^C on the console line must not stop the machine; EPIPE ends it instead.
  for (int sig : {SIGHUP, SIGINT, SIGPIPE}) {
    if (::signal(sig, SIG_IGN) == SIG_ERR) return fail_start("signal");
  }
  // SIGTERM is the shutdown request; it arrives through a descriptor so that the main loop,
  // not a handler, prints the power-off messages.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigaddset(&term, SIGUSR1);
  sigaddset(&term, SIGUSR2);
  if (::sigprocmask(SIG_BLOCK, &term, nullptr) < 0) return fail_start("sigprocmask");
  UniqueFd signal_fd(::signalfd(-1, &term, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd) return fail_start("signalfd");
  NonBlockingStdio stdio;
  if (!stdio.enable()) return fail_start("fcntl");
  FakeGuest guest(name && *name ? name : "guest", domid && *domid ? domid : "0", signal_fd.get());
  return guest.run();
}

}  // namespace xcg::xen
