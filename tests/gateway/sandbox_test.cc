#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <functional>

#include <catch2/catch.hpp>

#include "gateway/sandbox.h"

using xcg::gateway::install_seccomp_filter;

namespace {

struct Outcome {
  bool exited = false;
  int code = -1;    // exit code, if exited
  int signal = 0;   // terminating signal, if killed
};

// Runs `body` in a child under the session's seccomp filter; body's return is the exit code.
Outcome run_filtered(const std::function<int()>& body) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (!install_seccomp_filter()) ::_exit(100);
    ::_exit(body());
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  Outcome o;
  o.exited = WIFEXITED(status);
  if (o.exited) o.code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) o.signal = WTERMSIG(status);
  return o;
}

}  // namespace

TEST_CASE("the session filter allows what a session needs") {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds) == 0);
  auto o = run_filtered([&fds] {
    // Sockets made before the filter keep working: that is how the session talks.
    if (::send(fds[0], "ping", 4, 0) != 4) return 1;
    char buf[8];
    if (::recv(fds[1], buf, sizeof buf, 0) != 4) return 2;
    void* p = ::malloc(1 << 20);  // large enough to be an mmap
    if (p == nullptr) return 3;
    ::free(p);
    timespec ts{};
    if (::clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 4;
    return 0;
  });
  ::close(fds[0]);
  ::close(fds[1]);
  CHECK(o.exited);
  CHECK(o.code == 0);
}

TEST_CASE("open(2) of a file fails with EACCES under the filter") {
  auto o = run_filtered([] {
    int fd = ::open("/etc/passwd", O_RDONLY);
    return (fd < 0 && errno == EACCES) ? 0 : 1;
  });
  CHECK(o.exited);
  CHECK(o.code == 0);
}

TEST_CASE("socket(2) kills the process") {
  auto o = run_filtered([] { return ::socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 0 : 1; });
  CHECK_FALSE(o.exited);
  CHECK(o.signal == SIGSYS);
}

TEST_CASE("execve(2) kills the process") {
  auto o = run_filtered([] {
    char arg0[] = "true";
    char* argv[] = {arg0, nullptr};
    ::execv("/bin/true", argv);
    return 1;
  });
  CHECK_FALSE(o.exited);
  CHECK(o.signal == SIGSYS);
}

TEST_CASE("fork(2) kills the process") {
  auto o = run_filtered([] {
    pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    return 1;
  });
  CHECK_FALSE(o.exited);
  CHECK(o.signal == SIGSYS);
}

TEST_CASE("executable memory is refused") {
  auto o = run_filtered([] {
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? 1 : 0;
  });
  CHECK_FALSE(o.exited);
  CHECK(o.signal == SIGSYS);
}

TEST_CASE("signals to other processes are refused") {
  pid_t parent = ::getpid();
  auto o = run_filtered([parent] { return ::kill(parent, 0) == 0 ? 0 : 1; });
  CHECK_FALSE(o.exited);
  CHECK(o.signal == SIGSYS);
}
