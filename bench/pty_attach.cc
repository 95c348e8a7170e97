// pty_attach: the benchmark's console client, the stand-in for `xl console DOMAIN`.
//
//   pty_attach CONSOLE_DIR [DOMAIN]     (DOMAIN defaults to $XCG_DOMAIN)
//
// Opens CONSOLE_DIR/DOMAIN (a symlink to the domain's console pty, made by guest_host) and
// relays bytes between it and stdin/stdout until either side goes away. Both servers use it:
// the OpenSSH baseline runs it per login through sudo (as the classic recipe runs `xl
// console`), and xcg's simulated hypervisor runs one per domain as its guest_command, so that
// both serve the very same guest processes.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "base/unique_fd.h"

namespace {

constexpr size_t kBufferSize = 64 * 1024;

// The same rule as xcg's domain names: it runs as root under sudo, so no '/' or "..".
bool valid_domain(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '-' && c != '_' && c != '.'))) return false;
  }
  return true;
}

int fail(const char* what) {
  std::fprintf(stderr, "pty_attach: %s: %s\r\n", what, std::strerror(errno));
  return 1;
}

// Raw mode on a terminal, restored on the way out (xl console does the same for both ends).
class RawTerminal {
 public:
  bool enable(int fd) {
    if (!::isatty(fd)) return true;
    termios tio{};
    if (::tcgetattr(fd, &tio) < 0) return false;
    saved_ = tio;
    fd_ = fd;
    ::cfmakeraw(&tio);
    return ::tcsetattr(fd, TCSANOW, &tio) == 0;
  }
  ~RawTerminal() {
    if (saved_ && ::tcsetattr(fd_, TCSANOW, &*saved_) < 0) std::perror("pty_attach: tcsetattr");
  }

 private:
  int fd_ = -1;
  std::optional<termios> saved_;
};

// O_NONBLOCK on stdin/stdout, restored on the way out in case they are a shell's terminal.
class NonBlocking {
 public:
  bool enable(int fd) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) return false;
    if (!fd_) {
      fd_ = fd;
      flags_ = flags;
    }
    return ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
  }
  ~NonBlocking() {
    if (fd_ && ::fcntl(*fd_, F_SETFL, flags_) < 0) std::perror("pty_attach: fcntl");
  }

 private:
  std::optional<int> fd_;
  int flags_ = 0;
};

// One direction of the relay: a bounded buffer between a reader and a writer.
struct Pipe {
  char data[kBufferSize];
  size_t start = 0, end = 0;
  bool empty() const { return start == end; }
  bool has_room() const { return end < kBufferSize; }

  // Returns false when the source is gone (EOF, EIO, HUP).
  bool fill(int fd) {
    ssize_t n = ::read(fd, data + end, kBufferSize - end);
    if (n > 0) {
      end += static_cast<size_t>(n);
      return true;
    }
    return n < 0 && (errno == EAGAIN || errno == EINTR);
  }
  // Returns false when the sink is gone.
  bool drain(int fd) {
    ssize_t n = ::write(fd, data + start, end - start);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    start += static_cast<size_t>(n);
    if (start == end) start = end = 0;
    return true;
  }
};

Pipe to_console, to_client;

int relay(int console, int signals) {
  for (;;) {
    pollfd fds[5] = {
        {to_console.has_room() ? STDIN_FILENO : -1, POLLIN, 0},
        {to_client.has_room() ? console : -1, POLLIN, 0},
        {to_console.empty() ? -1 : console, POLLOUT, 0},
        {to_client.empty() ? -1 : STDOUT_FILENO, POLLOUT, 0},
        {signals, POLLIN, 0},
    };
    if (::poll(fds, 5, -1) < 0) {
      if (errno == EINTR) continue;
      return fail("poll");
    }
    if (fds[4].revents) return 0;  // SIGHUP, SIGTERM or SIGINT: the client is going away
    if (fds[0].revents && !to_console.fill(STDIN_FILENO)) return 0;  // client gone
    if (fds[1].revents && !to_client.fill(console)) return 1;        // console gone
    if (fds[2].revents && !to_console.drain(console)) return 1;
    if (fds[3].revents && !to_client.drain(STDOUT_FILENO)) return 0;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: pty_attach CONSOLE_DIR [DOMAIN]\n");
    return 2;
  }
  const char* env_domain = std::getenv("XCG_DOMAIN");
  std::string domain = argc == 3 ? argv[2] : (env_domain ? env_domain : "");
  if (!valid_domain(domain)) {
    std::fprintf(stderr, "pty_attach: bad domain name '%s'\n", domain.c_str());
    return 2;
  }
  std::string path = std::string(argv[1]) + "/" + domain;

  sigset_t stop;
  sigemptyset(&stop);
  for (int sig : {SIGHUP, SIGTERM, SIGINT, SIGPIPE}) sigaddset(&stop, sig);
  if (::sigprocmask(SIG_BLOCK, &stop, nullptr) < 0) return fail("sigprocmask");
  sigdelset(&stop, SIGPIPE);  // EPIPE from write is enough
  xcg::UniqueFd signals(::signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signals) return fail("signalfd");

  xcg::UniqueFd console(::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
  if (!console) return fail(path.c_str());
  RawTerminal console_mode, client_mode;
  if (!console_mode.enable(console.get()) || !client_mode.enable(STDIN_FILENO)) return fail("tcsetattr");
  NonBlocking in, out;
  if (!in.enable(STDIN_FILENO) || !out.enable(STDOUT_FILENO)) return fail("fcntl");
  return relay(console.get(), signals.get());
}
