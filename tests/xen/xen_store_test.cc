// XenStore (our libxenstore wrapper) and the fake xenstored, through the real libxenstore.
#include <poll.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

extern "C" {
#include <xenstore.h>
}

#include "tests/xen/fake_xenstored.h"
#include "tests/xen/xen_test_support.h"
#include "xen/xen_store.h"

namespace xcg::xen::testing {
namespace {

using namespace std::chrono_literals;
using Strings = std::vector<std::string>;

struct Fixture {
  TempDir dir;
  FakeXenstored xenstored{dir / "socket"};
  ScopedEnv env{"XENSTORED_PATH", xenstored.socket_path()};

  XenStore connect() {
    auto store = XenStore::open();
    REQUIRE(store);
    return std::move(*store);
  }
};

// Every event up to a marker: the fake sends events in order, so once the marker's event is
// here, everything fired before it is too. No quiet-period guessing.
std::vector<XenStore::WatchEvent> events(XenStore& store, FakeXenstored& xenstored) {
  static int serial = 0;
  std::string marker = "/marker/" + std::to_string(++serial);
  xenstored.write(marker, "");
  std::vector<XenStore::WatchEvent> out;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{store.fd(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    for (;;) {
      auto e = store.next_event();
      REQUIRE(e);
      if (!*e) break;
      if ((*e)->path == marker) return out;
      if ((*e)->token != "marker") out.push_back(**e);
    }
  }
  FAIL("the marker event did not arrive");
  return out;
}

void watch_markers(XenStore& store, FakeXenstored& xenstored) {
  REQUIRE(store.watch("/marker", "marker"));
  events(store, xenstored);  // and the watch's own first event
}

Strings paths_of(const std::vector<XenStore::WatchEvent>& events) {
  Strings out;
  for (const auto& e : events) out.push_back(e.path);
  return out;
}

TEST_CASE("XenStore::open without a xenstored says where it looked") {
  TempDir dir;
  ScopedEnv env("XENSTORED_PATH", dir / "no-socket");
  auto store = XenStore::open();
  REQUIRE_FALSE(store);
  CHECK(store.error().code == Errc::unavailable);
  CHECK_THAT(store.error().message, Catch::Contains("cannot reach xenstored at " + dir / "no-socket"));
}

TEST_CASE("XenStore reads, writes, lists and removes nodes") {
  Fixture f;
  XenStore store = f.connect();
  REQUIRE(store.write("/local/domain/3/name", "web1"));
  CHECK(f.xenstored.read("/local/domain/3/name") == "web1");  // it really went over the socket
  CHECK(store.read("/local/domain/3/name").value() == "web1");
  CHECK(store.read("/local/domain/3").value() == "");  // parents are made, empty
  CHECK(store.read("/local/domain/9/name").value() == std::nullopt);

  REQUIRE(store.write("/local/domain/4/name", ""));
  CHECK(store.read("/local/domain/4/name").value() == "");
  CHECK(store.directory("/local/domain").value() == Strings{"3", "4"});
  CHECK(store.directory("/local/domain/4/name").value().empty());
  CHECK(store.directory("/nowhere").value().empty());

  REQUIRE(store.remove("/local/domain/3"));
  CHECK(store.read("/local/domain/3/name").value() == std::nullopt);
  CHECK(store.directory("/local/domain").value() == Strings{"4"});
  CHECK(store.remove("/local/domain/3"));  // gone already: fine, as xenstored says
  CHECK_FALSE(store.remove("/no/such/parent"));

  CHECK(store.domain_path(7).value() == "/local/domain/7");
  auto bad = store.read("relative/path");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().sys_errno == EINVAL);
}

TEST_CASE("XenStore watches fire once when set, then for changes at or below the path") {
  Fixture f;
  XenStore store = f.connect();
  watch_markers(store, f.xenstored);
  REQUIRE(store.watch("/local/domain/5/console", "tok"));
  auto first = events(store, f.xenstored);
  REQUIRE(first.size() == 1);
  CHECK(first[0].path == "/local/domain/5/console");
  CHECK(first[0].token == "tok");

  f.xenstored.write("/local/domain/5/console/tty", "/dev/pts/3");
  f.xenstored.write("/local/domain/6/console/tty", "/dev/pts/4");  // not watched
  CHECK(paths_of(events(store, f.xenstored)) == Strings{"/local/domain/5/console/tty"});

  // Removing a parent fires the watches below it with their own path.
  f.xenstored.remove("/local/domain/5");
  CHECK(paths_of(events(store, f.xenstored)) == Strings{"/local/domain/5/console"});

  REQUIRE(store.unwatch("/local/domain/5/console", "tok"));
  f.xenstored.write("/local/domain/5/console/tty", "/dev/pts/5");
  CHECK(events(store, f.xenstored).empty());
  CHECK_FALSE(store.unwatch("/local/domain/5/console", "tok"));
}

TEST_CASE("XenStore watches on @introduceDomain and @releaseDomain") {
  Fixture f;
  XenStore store = f.connect();
  watch_markers(store, f.xenstored);
  REQUIRE(store.watch("@introduceDomain", "in"));
  REQUIRE(store.watch("@releaseDomain", "out"));
  CHECK(paths_of(events(store, f.xenstored)) == Strings{"@introduceDomain", "@releaseDomain"});
  f.xenstored.write("/local/domain/1/name", "x");  // special watches see no node changes
  f.xenstored.release_domain();
  auto fired = events(store, f.xenstored);
  REQUIRE(fired.size() == 1);
  CHECK(fired[0].path == "@releaseDomain");
  CHECK(fired[0].token == "out");
  CHECK(f.xenstored.watch_count() == 3);
}

TEST_CASE("the fake xenstored speaks enough protocol for libxenstore's other calls") {
  Fixture f;
  std::unique_ptr<xs_handle, void (*)(xs_handle*)> h(xs_open(0), xs_close);
  REQUIRE(h);

  SECTION("a committed transaction applies its writes at the end") {
    xs_transaction_t t = xs_transaction_start(h.get());
    REQUIRE(t != XBT_NULL);
    REQUIRE(xs_write(h.get(), t, "/a/b", "1", 1));
    unsigned len = 0;
    std::unique_ptr<char, decltype(&std::free)> in_tx(static_cast<char*>(xs_read(h.get(), t, "/a/b", &len)),
                                                      std::free);
    REQUIRE(in_tx);
    CHECK(std::string(in_tx.get(), len) == "1");
    CHECK(f.xenstored.read("/a/b") == std::nullopt);  // not yet visible outside
    REQUIRE(xs_transaction_end(h.get(), t, false));
    CHECK(f.xenstored.read("/a/b") == "1");
  }
  SECTION("a transaction that raced another writer fails with EAGAIN") {
    xs_transaction_t t = xs_transaction_start(h.get());
    REQUIRE(xs_write(h.get(), t, "/a/b", "1", 1));
    f.xenstored.write("/a/c", "other");
    CHECK_FALSE(xs_transaction_end(h.get(), t, false));
    CHECK(errno == EAGAIN);
    CHECK(f.xenstored.read("/a/b") == std::nullopt);
  }
  SECTION("an aborted transaction leaves nothing behind") {
    xs_transaction_t t = xs_transaction_start(h.get());
    REQUIRE(xs_write(h.get(), t, "/a/b", "1", 1));
    REQUIRE(xs_transaction_end(h.get(), t, true));
    CHECK(f.xenstored.read("/a/b") == std::nullopt);
  }
  SECTION("mkdir, and introduce/release firing the special watches") {
    REQUIRE(xs_mkdir(h.get(), XBT_NULL, "/x/y"));
    CHECK(f.xenstored.read("/x/y") == "");
    REQUIRE(xs_watch(h.get(), "@introduceDomain", "t"));
    unsigned num = 0;
    std::free(xs_read_watch(h.get(), &num));  // the one on setting it
    REQUIRE(xs_introduce_domain(h.get(), 5, 0, 0));
    std::unique_ptr<char*, decltype(&std::free)> event(xs_read_watch(h.get(), &num), std::free);
    REQUIRE(event);
    CHECK(std::string(event.get()[XS_WATCH_PATH]) == "@introduceDomain");
  }
  CHECK(f.xenstored.requests_served() > 0);
}

}  // namespace
}  // namespace xcg::xen::testing
