#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "gateway/console/console_hub.h"

using namespace std::chrono_literals;
using namespace xcg;
using xcg::gateway::ConsoleHub;
namespace gateway = xcg::gateway;

namespace {

std::pair<UniqueFd, UniqueFd> stream_pair() {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Each read returns one write, as a pty returns a few KiB at a time; each send arrives as one
// packet, so a test can count the hub's sends.
std::pair<UniqueFd, UniqueFd> packet_pair() {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
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
    return loop.run_until(
        [&] {
          drain(viewer, seen);
          return seen.find(needle) != std::string::npos;
        },
        5s);
  }
};

}  // namespace

TEST_CASE("two viewers both receive all console output") {
  Fixture f;
  auto [hub_a, a] = stream_pair();
  auto [hub_b, b] = stream_pair();
  f.hub.attach(std::move(hub_a), {}, {});
  f.hub.attach(std::move(hub_b), {}, {});
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
  f.hub.attach(std::move(hub_a), {}, {});
  f.hub.attach(std::move(hub_b), {}, {});
  write_all(a.get(), "root\r");
  write_all(b.get(), "ls\r");
  std::string typed;
  CHECK(f.loop.run_until(
      [&] {
        drain(f.guest.get(), typed);
        return typed.size() == 8;
      },
      5s));
  CHECK((typed == "root\rls\r" || typed == "ls\rroot\r"));
}

TEST_CASE("a closed viewer is detached and reported once; others continue") {
  Fixture f;
  int detached = 0;
  auto [hub_a, a] = stream_pair();
  auto [hub_b, b] = stream_pair();
  f.hub.attach(std::move(hub_a), {}, [&] { ++detached; });
  f.hub.attach(std::move(hub_b), {}, {});
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
  f.hub.attach(std::move(hub_slow), {}, {});
  f.hub.attach(std::move(hub_fast), {}, {});

  // Far more than the slow viewer's socket buffer plus its backlog bound.
  const std::string chunk(8192, 'x');
  const size_t total = 4 * 1024 * 1024;
  std::string fast_seen;
  size_t written = 0;
  CHECK(f.loop.run_until(
      [&, &fast = fast] {
        if (written < total) {
          ssize_t n = ::write(f.guest.get(), chunk.data(), chunk.size());
          if (n > 0) written += static_cast<size_t>(n);
        }
        drain(fast.get(), fast_seen);
        return fast_seen.size() == total;
      },
      20s));
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
  f.hub.attach(std::move(hub_a), {}, {});
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

TEST_CASE("a late viewer gets the replay first, then live output, with no gap or duplicate") {
  Fixture f;
  auto [hub_a, a] = stream_pair();
  f.hub.attach(std::move(hub_a), {}, {});
  // Numbered lines, the second viewer attaching in the middle of the stream.
  std::string a_seen, b_seen;
  UniqueFd b;
  for (int i = 1; i <= 400; ++i) {
    write_all(f.guest.get(), fmt::format("line {}\r\n", i));
    if (i == 200) {
      CHECK(f.wait_for(a.get(), a_seen, "line 200\r\n"));
      auto [hub_b, b_end] = stream_pair();
      f.hub.attach(std::move(hub_b), {}, {});
      b = std::move(b_end);
    }
  }
  CHECK(f.wait_for(a.get(), a_seen, "line 400\r\n"));
  CHECK(f.wait_for(b.get(), b_seen, "line 400\r\n"));
  // The late viewer saw a contiguous run ending at 400: every number once, in order.
  int expected = -1;
  size_t pos = 0;
  while ((pos = b_seen.find("line ", pos)) != std::string::npos) {
    int n = std::stoi(b_seen.substr(pos + 5));
    if (expected != -1) CHECK(n == expected);
    expected = n + 1;
    pos += 5;
  }
  CHECK(expected == 401);
  CHECK(b_seen.rfind("line 1\r\n", 0) == 0);  // the whole boot fits the default replay
}

TEST_CASE("the replay is bounded and starts at a line boundary") {
  EventLoop loop;
  ConsoleHub hub(loop, "web1", gateway::HubSettings{4096, 1000, "", 0});
  auto [hub_end, guest] = stream_pair();
  hub.set_console(std::move(hub_end));
  auto [probe_end, probe] = stream_pair();  // tells us when the hub has read everything
  hub.attach(std::move(probe_end), {}, {});
  std::string text;
  for (int i = 0; i < 500; ++i) text += fmt::format("message {:04}\r\n", i);
  write_all(guest.get(), text);
  std::string probed;
  CHECK(loop.run_until(
      [&, &probe = probe] {
        drain(probe.get(), probed);
        return probed.find("message 0499\r\n") != std::string::npos;
      },
      5s));
  auto [viewer_end, viewer] = stream_pair();
  hub.attach(std::move(viewer_end), {}, {});
  std::string seen;
  CHECK(loop.run_until(
      [&, &viewer = viewer] {
        drain(viewer.get(), seen);
        return seen.find("message 0499\r\n") != std::string::npos;
      },
      5s));
  CHECK(seen.size() <= 1000);
  CHECK(seen.rfind("message ", 0) == 0);
}

TEST_CASE("after a reboot the replay starts with the new boot's notice") {
  Fixture f;
  auto [probe_end, probe] = stream_pair();  // tells us when the hub has read each boot
  f.hub.attach(std::move(probe_end), {}, {});
  std::string probed;
  write_all(f.guest.get(), "old boot output\r\n");
  CHECK(f.wait_for(probe.get(), probed, "old boot output"));
  auto [hub_end, guest2] = stream_pair();
  f.hub.mark_boot();
  f.hub.notice("web1 rebooted, new domid 2");
  f.hub.set_console(std::move(hub_end));
  write_all(guest2.get(), "new boot banner\r\n");
  CHECK(f.wait_for(probe.get(), probed, "new boot banner"));
  auto [viewer_end, viewer] = stream_pair();
  std::string seen;
  f.hub.attach(std::move(viewer_end), {}, {});
  CHECK(f.wait_for(viewer.get(), seen, "new boot banner"));
  CHECK(seen.find("[xcg: web1 rebooted, new domid 2]") != std::string::npos);
  // The screenful rule still shows the previous lines (fewer than a screen since the boot).
  CHECK(seen.find("old boot output") != std::string::npos);
}

TEST_CASE("a read-only viewer's input never reaches the console") {
  Fixture f;
  auto [hub_ro, ro] = stream_pair();
  auto [hub_rw, rw] = stream_pair();
  f.hub.attach(std::move(hub_ro), gateway::ViewerInfo{"bob", true}, {});
  f.hub.attach(std::move(hub_rw), gateway::ViewerInfo{"alice", false}, {});
  // Both are readable before the loop runs, so the hub reads both in the same step.
  write_all(ro.get(), "rm -rf /\r");
  write_all(rw.get(), "ok\r");
  std::string typed;
  CHECK(f.loop.run_until(
      [&] {
        drain(f.guest.get(), typed);
        return typed.find("ok\r") != std::string::npos;
      },
      5s));
  CHECK(typed == "ok\r");
  auto viewers = f.hub.viewers();
  REQUIRE(viewers.size() == 2);
  CHECK(viewers[0].label == "bob");
  CHECK(viewers[0].readonly);
}

TEST_CASE("console output read in many small pieces goes to a viewer in one send") {
  EventLoop loop;
  ConsoleHub hub(loop, "web1");
  auto [hub_end, guest] = packet_pair();
  hub.set_console(std::move(hub_end));
  auto [viewer_end, viewer] = packet_pair();
  hub.attach(std::move(viewer_end), {}, {});
  // All of it is waiting before the hub reads: 16 reads of 4000 bytes, within one 64 KiB batch.
  std::string written;
  for (char c = 'a'; c < 'a' + 16; ++c) {
    std::string piece(4000, c);
    write_all(guest.get(), piece);
    written += piece;
  }
  std::vector<std::string> packets;
  size_t received = 0;
  CHECK(loop.run_until(
      [&, &viewer = viewer] {
        std::string buf(128 * 1024, '\0');
        ssize_t n;
        while ((n = ::recv(viewer.get(), buf.data(), buf.size(), 0)) > 0) {
          packets.emplace_back(buf.data(), static_cast<size_t>(n));
          received += static_cast<size_t>(n);
        }
        return received >= written.size();
      },
      5s));
  REQUIRE(packets.size() == 1);
  CHECK(packets[0] == written);
}

TEST_CASE("make_readonly stops a session's typing at once and tells only its viewers") {
  Fixture f;
  auto [hub_a, a] = stream_pair();
  auto [hub_b, b] = stream_pair();
  f.hub.attach(std::move(hub_a), gateway::ViewerInfo{.label = "a", .session_id = 7}, {});
  f.hub.attach(std::move(hub_b), gateway::ViewerInfo{.label = "b", .session_id = 8}, {});
  std::string typed;
  auto guest_got = [&](std::string_view s) {
    return f.loop.run_until(
        [&] {
          drain(f.guest.get(), typed);
          return typed.find(s) != std::string::npos;
        },
        5s);
  };
  write_all(a.get(), "before\r");
  REQUIRE(guest_got("before\r"));

  // Typed before the change but not yet read by the hub: discarded too.
  write_all(a.get(), "after-a\r");
  CHECK(f.hub.make_readonly(7, "your access to web1 is now read-only") == 1);
  CHECK(f.hub.make_readonly(99, "nobody") == 0);
  write_all(b.get(), "other-b\r");
  CHECK(guest_got("other-b\r"));
  // Once b's second line is in, the hub has read everything a sent before it.
  write_all(a.get(), "later-a\r");
  write_all(b.get(), "second-b\r");
  CHECK(guest_got("second-b\r"));
  CHECK(typed.find("after-a") == std::string::npos);
  CHECK(typed.find("later-a") == std::string::npos);

  std::string seen_a, seen_b;
  CHECK(f.wait_for(a.get(), seen_a, "[xcg: your access to web1 is now read-only]"));
  write_all(f.guest.get(), "output");
  CHECK(f.wait_for(a.get(), seen_a, "output"));  // still attached, still sees the console
  CHECK(f.wait_for(b.get(), seen_b, "output"));
  CHECK(seen_b.find("read-only") == std::string::npos);
  auto viewers = f.hub.viewers();
  REQUIRE(viewers.size() == 2);
  CHECK(viewers[0].readonly);
  CHECK_FALSE(viewers[1].readonly);
}

TEST_CASE("detach_session sends its viewers one line, then closes them; others stay") {
  Fixture f;
  int detached = 0;
  auto [hub_a, a] = stream_pair();
  auto [hub_b, b] = stream_pair();
  f.hub.attach(std::move(hub_a), gateway::ViewerInfo{.label = "a", .session_id = 7}, [&] { ++detached; });
  f.hub.attach(std::move(hub_b), gateway::ViewerInfo{.label = "b", .session_id = 8}, {});
  CHECK(f.hub.detach_session(7, "console access to web1 was withdrawn; detached") == 1);
  std::string seen_a;
  bool open = true;
  CHECK(f.loop.run_until([&, &a = a] { return !(open = drain(a.get(), seen_a)); }, 5s));
  CHECK(seen_a == "\r\n[xcg: console access to web1 was withdrawn; detached]\r\n");
  CHECK(detached == 1);
  CHECK(f.hub.viewer_count() == 1);
  REQUIRE(f.hub.viewers().size() == 1);
  CHECK(f.hub.viewers()[0].label == "b");

  write_all(f.guest.get(), "still here");
  std::string seen_b;
  CHECK(f.wait_for(b.get(), seen_b, "still here"));
  CHECK(seen_b.find("withdrawn") == std::string::npos);
  write_all(b.get(), "typed-b\r");
  std::string typed;
  CHECK(f.loop.run_until(
      [&] {
        drain(f.guest.get(), typed);
        return typed == "typed-b\r";
      },
      5s));
}

TEST_CASE("detach_session closes a viewer that does not read after a grace time") {
  Fixture f;
  int detached = 0;
  auto [hub_a, a] = stream_pair();
  int small = 4096;  // the socket fills at once: the line must wait in the hub's backlog
  REQUIRE(::setsockopt(hub_a.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
  f.hub.attach(std::move(hub_a), gateway::ViewerInfo{.label = "a", .session_id = 7}, [&] { ++detached; });
  write_all(f.guest.get(), std::string(64 * 1024, 'x'));
  CHECK(f.loop.run_until(
      [&] {
        int unread = 0;  // what the hub has not read of the guest's output
        return ::ioctl(f.guest.get(), SIOCOUTQ, &unread) == 0 && unread == 0;
      },
      5s));
  CHECK(f.hub.detach_session(7, "console access to web1 was withdrawn; detached") == 1);
  CHECK(f.hub.viewers().empty());  // no longer listed, though its socket is still open
  CHECK(detached == 0);
  auto start = std::chrono::steady_clock::now();
  CHECK(f.loop.run_until([&] { return detached == 1; }, 10s));
  CHECK(std::chrono::steady_clock::now() - start >= ConsoleHub::kDetachGrace - 100ms);
  CHECK(f.hub.viewer_count() == 0);
}

TEST_CASE("a destroyed hub leaves nothing in the loop, not even a closing viewer's timer") {
  EventLoop loop;
  auto hub = std::make_unique<ConsoleHub>(loop, "web1");
  auto [hub_console, guest] = stream_pair();
  int console_fd = hub_console.get();
  hub->set_console(std::move(hub_console));
  auto [hub_a, a] = stream_pair();
  auto [hub_b, b] = stream_pair();
  int viewer_fds[] = {hub_a.get(), hub_b.get()};
  int small = 4096;  // the socket fills at once: the closing line must wait for its timer
  REQUIRE(::setsockopt(hub_a.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
  int detached = 0;
  hub->attach(std::move(hub_a), gateway::ViewerInfo{.label = "a", .session_id = 7}, [&] { ++detached; });
  hub->attach(std::move(hub_b), gateway::ViewerInfo{.label = "b", .session_id = 8}, [&] { ++detached; });
  write_all(guest.get(), std::string(64 * 1024, 'x'));
  REQUIRE(loop.run_until(
      [&, &guest = guest] {
        int unread = 0;
        return ::ioctl(guest.get(), SIOCOUTQ, &unread) == 0 && unread == 0;
      },
      5s));
  REQUIRE(hub->detach_session(7, "detached") == 1);  // viewer a now waits for its close timer
  REQUIRE(loop.watching(viewer_fds[0]));

  hub.reset();
  CHECK(detached == 2);
  CHECK_FALSE(loop.watching(console_fd));
  CHECK_FALSE(loop.watching(viewer_fds[0]));
  CHECK_FALSE(loop.watching(viewer_fds[1]));
  // Past the grace time nothing fires: the timer would call into the destroyed hub.
  loop.run_until([] { return false; }, ConsoleHub::kDetachGrace + 300ms);
  CHECK(detached == 2);
}

namespace {

// A hub on a stream-socket console with one viewer, and a guest that writes `total` bytes as
// fast as its console takes them.
struct HeldGuest {
  EventLoop loop;
  ConsoleHub hub;
  UniqueFd guest;
  UniqueFd viewer;
  size_t total = 2 * 1024 * 1024;  // far more than the viewer's socket buffer plus its backlog
  size_t written = 0;

  explicit HeldGuest(std::chrono::milliseconds max_hold)
      : hub(loop, "web1", gateway::HubSettings{.max_hold = max_hold}) {
    auto [hub_end, guest_end] = stream_pair();
    hub.set_console(std::move(hub_end));
    guest = std::move(guest_end);
    auto [hub_viewer, viewer_end] = stream_pair();
    hub.attach(std::move(hub_viewer), {}, {});
    viewer = std::move(viewer_end);
  }
  // Writes what the console takes now; true once all of it is written.
  bool write_what_fits() {
    const std::string chunk(8192, 'x');
    while (written < total) {
      ssize_t n = ::write(guest.get(), chunk.data(), std::min(chunk.size(), total - written));
      if (n <= 0) break;
      written += static_cast<size_t>(n);
    }
    return written == total;
  }
};

}  // namespace

TEST_CASE("a viewer slower than the guest holds the guest back and misses nothing") {
  HeldGuest g(60s);  // only the viewer's reading releases the guest here
  std::string seen;
  CHECK(g.loop.run_until(
      [&] {
        g.write_what_fits();
        char buf[32 * 1024];  // one read per step: slower than the guest writes
        ssize_t n = ::read(g.viewer.get(), buf, sizeof buf);
        if (n > 0) seen.append(buf, static_cast<size_t>(n));
        return seen.size() >= g.total;
      },
      20s));
  CHECK(seen.size() == g.total);
  CHECK(seen.find('[') == std::string::npos);  // no skip marker: nothing was skipped
}

TEST_CASE("a viewer that reads nothing holds the guest once for max_hold and is then skipped ahead") {
  HeldGuest g(300ms);
  auto start = std::chrono::steady_clock::now();
  // Held once: were every 64 KiB read held for max_hold anew, the 2 MiB would take over 5 s.
  CHECK(g.loop.run_until([&] { return g.write_what_fits(); }, 3s));
  CHECK(std::chrono::steady_clock::now() - start >= 300ms);

  std::string seen;
  CHECK(g.loop.run_until(
      [&] {
        drain(g.viewer.get(), seen);
        return seen.find("bytes skipped]") != std::string::npos;
      },
      5s));
  write_all(g.guest.get(), "END");  // a viewer that reads again gets live output
  CHECK(g.loop.run_until(
      [&] {
        drain(g.viewer.get(), seen);
        return seen.find("END") != std::string::npos;
      },
      5s));
}

TEST_CASE("a held guest goes on at once when its only viewer leaves") {
  HeldGuest g(60s);
  CHECK_FALSE(g.loop.run_until([&] { return g.write_what_fits(); }, 2s));  // held
  g.viewer.reset();
  CHECK(g.loop.run_until([&] { return g.write_what_fits(); }, 10s));
  CHECK(g.hub.viewer_count() == 0);
}
