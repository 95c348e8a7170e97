// guest_host: the guests both servers share in the benchmark, playing xenconsoled's part.
//
//   guest_host --guest XCG_BINARY --dir CONSOLE_DIR --count N [--prefix vm]
//
// For each domain vm0001..vmN it opens a pty, runs `XCG_BINARY guest` (xcg's fake guest) with
// the pty *master* as its stdin/stdout, and publishes the slave as CONSOLE_DIR/vmNNNN (a
// symlink to /dev/pts/K). That is what a Xen host looks like to a console client: xenconsoled
// holds the master and feeds it the guest's ring, and `xl console` opens the slave. The slave
// stays open here (as xenconsoled keeps it), so the line never hangs up between clients; raw
// mode is set once, as xenconsoled does. Prints "ready N" when every guest runs, then waits for
// SIGTERM/SIGINT/SIGHUP, stops the guests and removes the symlinks.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/pidfd.h"
#include "base/unique_fd.h"

namespace {

struct Guest {
  std::string name;
  std::string link;
  pid_t pid = 0;
  xcg::UniqueFd slave;  // kept open so the console never hangs up
  xcg::UniqueFd pidfd;
  bool exited = false;
};

struct Options {
  std::string guest_binary;
  std::string dir;
  std::string prefix = "vm";
  unsigned count = 0;
};

[[noreturn]] void child_fail(const char* what) {
  std::fprintf(stderr, "guest_host: child: %s: %s\n", what, std::strerror(errno));
  ::_exit(127);
}

// In the child of fork: the master becomes the guest's console, as xenconsoled's ring is.
[[noreturn]] void exec_guest(int master, const Options& o, const Guest& g, unsigned domid) {
  if (::setsid() < 0) child_fail("setsid");
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) child_fail("prctl");
  int devnull = ::open("/dev/null", O_WRONLY);
  if (devnull < 0) child_fail("/dev/null");
  if (::dup2(master, 0) < 0 || ::dup2(master, 1) < 0 || ::dup2(devnull, 2) < 0) child_fail("dup2");
  if (::close_range(3, ~0U, 0) < 0) child_fail("close_range");
  sigset_t none;
  sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) < 0) child_fail("sigprocmask");
  std::string domain = "XCG_DOMAIN=" + g.name;
  std::string id = fmt::format("XCG_DOMID={}", domid);
  char arg0[] = "xcg-guest";
  char arg1[] = "guest";
  char* argv[] = {arg0, arg1, nullptr};
  char* envp[] = {domain.data(), id.data(), nullptr};
  ::execve(o.guest_binary.c_str(), argv, envp);
  child_fail(o.guest_binary.c_str());
}

bool start_guest(const Options& o, Guest& g, unsigned domid) {
  int master_fd = -1, slave_fd = -1;
  winsize size{};
  size.ws_row = 24;
  size.ws_col = 80;
  if (::openpty(&master_fd, &slave_fd, nullptr, nullptr, &size) < 0) return false;
  xcg::UniqueFd master(master_fd);
  g.slave.reset(slave_fd);
  termios tio{};
  if (::tcgetattr(slave_fd, &tio) < 0) return false;
  ::cfmakeraw(&tio);
  if (::tcsetattr(slave_fd, TCSANOW, &tio) < 0) return false;
  if (::fcntl(slave_fd, F_SETFD, FD_CLOEXEC) < 0) return false;
  char* pts = ::ttyname(slave_fd);
  if (pts == nullptr) return false;
  std::string pts_path = pts;
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) exec_guest(master.get(), o, g, domid);
  g.pid = pid;
  g.pidfd.reset(xcg::open_pidfd(pid));
  if (!g.pidfd) return false;
  g.link = o.dir + "/" + g.name;
  if (::unlink(g.link.c_str()) < 0 && errno != ENOENT) return false;
  return ::symlink(pts_path.c_str(), g.link.c_str()) == 0;
}

void stop_guests(std::vector<Guest>& guests) {
  for (auto& g : guests) {
    if (g.pid > 0 && !g.exited && ::kill(g.pid, SIGKILL) < 0 && errno != ESRCH)
      std::fprintf(stderr, "guest_host: kill %d: %s\n", g.pid, std::strerror(errno));
  }
  for (auto& g : guests) {
    if (g.pid > 0) {
      while (::waitpid(g.pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    if (!g.link.empty() && ::unlink(g.link.c_str()) < 0 && errno != ENOENT)
      std::fprintf(stderr, "guest_host: unlink %s: %s\n", g.link.c_str(), std::strerror(errno));
  }
}

// Waits for a stop signal; reports guests that end on their own (they should not).
int wait_for_stop(std::vector<Guest>& guests, int signals) {
  std::vector<pollfd> fds;
  fds.push_back({signals, POLLIN, 0});
  for (auto& g : guests) fds.push_back({g.pidfd.get(), POLLIN, 0});
  int died = 0;
  for (;;) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      std::perror("guest_host: poll");
      return 1;
    }
    if (fds[0].revents) return died == 0 ? 0 : 1;
    for (size_t i = 1; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      Guest& g = guests[i - 1];
      int status = 0;
      if (::waitpid(g.pid, &status, WNOHANG) == g.pid) {
        std::fprintf(stderr, "guest_host: guest %s ended (status 0x%x)\n", g.name.c_str(), status);
        g.exited = true;
        g.pid = 0;
        ++died;
      }
      fds[i].fd = -1;
    }
  }
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--guest") o.guest_binary = argv[i + 1];
    else if (a == "--dir") o.dir = argv[i + 1];
    else if (a == "--prefix") o.prefix = argv[i + 1];
    else if (a == "--count") o.count = static_cast<unsigned>(std::strtoul(argv[i + 1], nullptr, 10));
    else return false;
  }
  return argc % 2 == 1 && !o.guest_binary.empty() && !o.dir.empty() && o.count > 0 && o.count <= 9999;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr, "usage: guest_host --guest XCG_BINARY --dir CONSOLE_DIR --count N [--prefix vm]\n");
    return 2;
  }
  sigset_t stop;
  sigemptyset(&stop);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&stop, sig);
  if (::sigprocmask(SIG_BLOCK, &stop, nullptr) < 0) return 1;
  xcg::UniqueFd signals(::signalfd(-1, &stop, SFD_CLOEXEC));
  if (!signals) return 1;

  std::vector<Guest> guests(o.count);
  for (unsigned i = 0; i < o.count; ++i) {
    guests[i].name = fmt::format("{}{:04}", o.prefix, i + 1);
    if (!start_guest(o, guests[i], i + 1)) {
      std::fprintf(stderr, "guest_host: cannot start %s: %s\n", guests[i].name.c_str(), std::strerror(errno));
      stop_guests(guests);
      return 1;
    }
  }
  std::printf("ready %u\n", o.count);
  std::fflush(stdout);
  int rc = wait_for_stop(guests, signals.get());
  stop_guests(guests);
  return rc;
}
