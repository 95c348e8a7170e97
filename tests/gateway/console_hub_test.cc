#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "gateway/console_hub.h"

using namespace std::chrono_literals;
using namespace xcg;
using xcg::gateway::ConsoleHub;

namespace {

std::pair<UniqueFd, UniqueFd> stream_pair() {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    REQUIRE(n > 0);
    s.remove_prefix(static_cast<size_t>(n));
  }
}

// Reads what is available from `fd` into `into`; returns false on EOF.
bool drain(int fd, std::string& into) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      into.append(buf, static_cast<size_t>(n));
      continue;
    }
    return n != 0;
  }
}

struct Fixture {
  EventLoop loop;
  ConsoleHub hub{loop, "web1"};
  UniqueFd guest;  // the "guest side" of the fake console
  Fixture() {
    auto [hub_end, guest_end] = stream_pair();
    hub.set_console(std::move(hub_end));
    guest = std::move(guest_end);
  }
  // Runs the loop until `viewer` has received text containing `needle`.
  bool wait_for(int viewer, std::string& seen, std::string_view needle) {
    return loop.run_until([&] {
      drain(viewer, seen);
      return seen.find(needle) != std::string::npos;
    }, 5s);
  }
};

}  // namespace

TEST_CASE("two viewers both receive all console output") {
  Fixture f;
  auto [hub_a, a] = stream_pair();
  auto [hub_b, b] = stream_pair();
  f.hub.attach(std::move(hub_a), {});
  f.hub.attach(std::move(hub_b), {});
  CHECK(f.hub.viewer_count() == 2);

  write_all(f.guest.get(), "boot message\r\nweb1 login: ");
  std::string seen_a, seen_b;
  CHECK(f.wait_for(a.get(), seen_a, "login: "));
  CHECK(f.wait_for(b.get(), seen_b, "login: "));
  CHECK(seen_a == seen_b);
  CHECK(seen_a == "boot message\r\nweb1 login: ");
}

TEST_CASE("viewer input reaches the console") {
  Fixture f;
  auto [hub_a, a] = stream_pair();
  auto [hub_b, b] = stream_pair();
  f.hub.attach(std::move(hub_a), {});
  f.hub.attach(std::move(hub_b), {});
  write_all(a.get(), "root\r");
  write_all(b.get(), "ls\r");
  std::string typed;
  CHECK(f.loop.run_until([&] {
    drain(f.guest.get(), typed);
    return typed.size() == 8;
  }, 5s));
  CHECK((typed == "root\rls\r" || typed == "ls\rroot\r"));
}

TEST_CASE("a closed viewer is detached and reported once; others continue") {
  Fixture f;
  int detached = 0;
  auto [hub_a, a] = stream_pair();
  auto [hub_b, b] = stream_pair();
  f.hub.attach(std::move(hub_a), [&] { ++detached; });
  f.hub.attach(std::move(hub_b), {});
  a.reset();
  CHECK(f.loop.run_until([&] { return detached == 1; }, 5s));
  CHECK(f.hub.viewer_count() == 1);
  write_all(f.guest.get(), "still here");
  std::string seen;
  CHECK(f.wait_for(b.get(), seen, "still here"));
  CHECK(detached == 1);
}

TEST_CASE("a viewer that stops reading never blocks the others, and learns what it missed") {
  Fixture f;
  auto [hub_slow, slow] = stream_pair();
  auto [hub_fast, fast] = stream_pair();
  f.hub.attach(std::move(hub_slow), {});
  f.hub.attach(std::move(hub_fast), {});

  // Far more than the slow viewer's socket buffer plus its backlog bound.
  const std::string chunk(8192, 'x');
  const size_t total = 4 * 1024 * 1024;
  std::string fast_seen;
  size_t written = 0;
  CHECK(f.loop.run_until([&] {
    if (written < total) {
      ssize_t n = ::write(f.guest.get(), chunk.data(), chunk.size());
      if (n > 0) written += static_cast<size_t>(n);
    }
    drain(fast.get(), fast_seen);
    return fast_seen.size() == total;
  }, 20s));
  CHECK(fast_seen.find('[') == std::string::npos);  // the reading viewer lost nothing

  // Now the slow viewer reads: it gets a bounded amount, then the marker, then new output.
  std::string slow_seen;
  CHECK(f.wait_for(slow.get(), slow_seen, "bytes skipped]"));
  CHECK(slow_seen.size() < total);
  write_all(f.guest.get(), "END");
  CHECK(f.wait_for(slow.get(), slow_seen, "END"));
}

TEST_CASE("viewers stay attached when the console goes away and comes back") {
  Fixture f;
  auto [hub_a, a] = stream_pair();
  f.hub.attach(std::move(hub_a), {});
  f.guest.reset();  // guest side closes: like a domain that stopped
  CHECK(f.loop.run_until([&] { return !f.hub.has_console(); }, 5s));
  CHECK(f.hub.viewer_count() == 1);

  auto [hub_end, guest_end] = stream_pair();
  f.hub.set_console(std::move(hub_end));
  f.hub.notice("web1 is running, domid 2");
  write_all(guest_end.get(), "second boot");
  std::string seen;
  CHECK(f.wait_for(a.get(), seen, "second boot"));
  CHECK(seen.find("[xcg: web1 is running, domid 2]") != std::string::npos);
}
