#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <functional>

#include <catch2/catch.hpp>

#include "gateway/ipc/ipc.h"
#include "gateway/session/seccomp_filter.h"

using xcg::gateway::install_seccomp_filter;

namespace {

struct Outcome {
  bool exited = false;
  int code = -1;   // exit code, if exited
  int signal = 0;  // terminating signal, if killed
};

// Runs `body` in a child under the session's seccomp filter; body's return is the exit code.
Outcome run_filtered(const std::function<int()>& body,
                     xcg::gateway::Filter filter = xcg::gateway::Filter::session) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (!install_seccomp_filter(filter)) ::_exit(100);
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

TEST_CASE("the IPC's sendmsg and recvmsg, and send with MSG_NOSIGNAL, work under the filter") {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds) == 0);
  auto o = run_filtered([&fds] {
    if (!xcg::gateway::ipc::send(fds[0], xcg::gateway::ipc::StatusReq{}, fds[0])) return 1;
    auto got = xcg::gateway::ipc::receive(fds[1]);  // recvmsg with MSG_CMSG_CLOEXEC
    if (!got || !got->fd) return 2;
    if (::send(fds[0], "x", 1, MSG_NOSIGNAL) != 1) return 3;
    return 0;
  });
  ::close(fds[0]);
  ::close(fds[1]);
  CHECK(o.exited);
  CHECK(o.code == 0);
}

TEST_CASE("setting a socket option kills the process") {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  auto o = run_filtered([&fds] {
    int one = 1;
    return ::setsockopt(fds[0], SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) == 0 ? 0 : 1;
  });
  ::close(fds[0]);
  ::close(fds[1]);
  CHECK_FALSE(o.exited);
  CHECK(o.signal == SIGSYS);
}

TEST_CASE("reading a socket option fails with EACCES") {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  auto o = run_filtered([&fds] {
    int size = 0;
    socklen_t len = sizeof size;
    return (::getsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &size, &len) < 0 && errno == EACCES) ? 0 : 1;
  });
  ::close(fds[0]);
  ::close(fds[1]);
  CHECK(o.exited);
  CHECK(o.code == 0);
}

TEST_CASE("sending or receiving out-of-band data kills the process") {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  auto send_oob =
      run_filtered([&fds] { return ::send(fds[0], "!", 1, MSG_OOB | MSG_NOSIGNAL) == 1 ? 0 : 1; });
  CHECK_FALSE(send_oob.exited);
  CHECK(send_oob.signal == SIGSYS);
  auto sendmsg_oob = run_filtered([&fds] {
    char byte = '!';
    iovec iov{&byte, 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    return ::sendmsg(fds[0], &msg, MSG_OOB) == 1 ? 0 : 1;
  });
  CHECK_FALSE(sendmsg_oob.exited);
  CHECK(sendmsg_oob.signal == SIGSYS);
  auto recv_oob = run_filtered([&fds] {
    char byte;
    return ::recv(fds[1], &byte, 1, MSG_OOB | MSG_DONTWAIT) == 1 ? 0 : 1;
  });
  CHECK_FALSE(recv_oob.exited);
  CHECK(recv_oob.signal == SIGSYS);
  ::close(fds[0]);
  ::close(fds[1]);
}

// Asio's reactor in xcg-web waits on, and (de)registers with, an epoll descriptor made before
// the filter; xcg-session's filter has no use for either.
TEST_CASE("epoll_wait and epoll_ctl: allowed for xcg-web only") {
  int epoll = ::epoll_create1(EPOLL_CLOEXEC);
  int fds[2];
  REQUIRE(epoll >= 0);
  REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds) == 0);
  auto body = [epoll, &fds] {
    epoll_event ev{};
    ev.events = EPOLLIN;
    if (::epoll_ctl(epoll, EPOLL_CTL_ADD, fds[0], &ev) != 0) return 1;
    if (::send(fds[1], "x", 1, 0) != 1) return 2;
    return ::epoll_wait(epoll, &ev, 1, 1000) == 1 ? 0 : 3;
  };
  auto web = run_filtered(body, xcg::gateway::Filter::web);
  CHECK(web.exited);
  CHECK(web.code == 0);
  auto session = run_filtered(body);
  CHECK(session.signal == SIGSYS);
  ::close(fds[0]);
  ::close(fds[1]);
  ::close(epoll);
}
