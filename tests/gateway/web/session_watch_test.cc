#include "gateway/web/session_watch.h"

#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <utility>

#include <catch2/catch.hpp>

using namespace xcg::gateway::web;

namespace {

struct Pair {
  Pair() { REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0); }
  ~Pair() { close(); }
  void close() {
    for (int& fd : fds)
      if (fd >= 0) ::close(std::exchange(fd, -1));
  }
  void say() { REQUIRE(::write(fds[1], "x", 1) == 1); }
  int fds[2] = {-1, -1};
};

}  // namespace

TEST_CASE("the session watch sees the console it was given, and only that one", "[web]") {
  Pair broker, console;
  SessionWatch watch(broker.fds[0]);
  watch.watch_console(WatchedConsole{console.fds[0], 1});
  CHECK_FALSE(watch.ready().console);
  console.say();
  CHECK(watch.ready().console);
  watch.watch_console(WatchedConsole{console.fds[0], 1});  // the same again: still watched
  CHECK(watch.ready().console);
  watch.watch_console(std::nullopt);
  CHECK_FALSE(watch.ready().console);
  broker.say();
  CHECK(watch.ready().broker);
}

TEST_CASE("a new console under the number of a closed one is watched", "[web]") {
  Pair broker;
  SessionWatch watch(broker.fds[0]);
  auto first = std::make_unique<Pair>();
  int number = first->fds[0];
  watch.watch_console(WatchedConsole{number, 1});
  first.reset();  // closing it took it out of the epoll set
  Pair second;
  REQUIRE(second.fds[0] == number);  // the lowest free number comes back
  watch.watch_console(WatchedConsole{second.fds[0], 2});
  second.say();
  CHECK(watch.ready().console);
}
