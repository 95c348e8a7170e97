// The hub directory against a fake hypervisor: what viewers are told when their domain
// starts, reboots (a new domid, as on Xen), crashes or does not come back in time.
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <map>

#include "gateway/broker/hub_directory.h"

using namespace std::chrono_literals;
using namespace xcg;
using namespace xcg::gateway;

namespace {

std::pair<UniqueFd, UniqueFd> stream_pair() {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Domains whose state the test sets; each console is a socket pair whose far end it keeps.
class FakeHypervisor final : public xen::Hypervisor {
 public:
  std::map<std::string, xen::DomainStatus> status_of;
  std::vector<UniqueFd> guest_ends;
  int consoles_opened = 0;

  void set(const std::string& domain, xen::DomainState state, std::optional<uint32_t> domid,
           bool rebooting = false, bool suspended = false) {
    auto& s = status_of[domain];
    s.name = domain;
    s.state = state;
    s.domid = domid;
    s.rebooting = rebooting;
    s.suspended = suspended;
    notify_console_changed(domain);
  }
  std::vector<std::string> domains() const override {
    std::vector<std::string> names;
    for (const auto& [name, s] : status_of) names.push_back(name);
    return names;
  }
  Result<void> add_domain(xen::DomainSpec spec) override {
    status_of[spec.name].name = spec.name;
    return {};
  }
  Result<void> remove_domain(const std::string& domain) override {
    status_of.erase(domain);
    return {};
  }
  Result<xen::DomainStatus> status(const std::string& domain) const override {
    auto it = status_of.find(domain);
    if (it == status_of.end()) return fail(Errc::not_found, "no such domain");
    return it->second;
  }
  void act_async(const std::string&, xen::Lifecycle, ActDone done) override { done({}); }
  Result<UniqueFd> open_console(const std::string&) override {
    auto [ours, theirs] = stream_pair();
    guest_ends.push_back(std::move(theirs));
    ++consoles_opened;
    return std::move(ours);
  }
};

struct Fixture {
  EventLoop loop;
  FakeHypervisor xen;
  std::unique_ptr<HubDirectory> hubs;
  UniqueFd viewer;
  std::string seen;

  explicit Fixture(xen::DomainState at_start = xen::DomainState::shut_off,
                   std::optional<uint32_t> domid = {}) {
    xen.status_of["web1"] = {.name = "web1", .state = at_start, .domid = domid};
    hubs = std::make_unique<HubDirectory>(loop, xen, config::ConsoleSettings{},
                                          HubDirectory::Timing{.reboot_window = 200ms, .close_grace = 50ms});
    auto [hub_end, ours] = stream_pair();
    viewer = std::move(ours);
    hubs->find("web1")->attach(std::move(hub_end), ViewerInfo{}, {});
  }
  // What the viewer has been sent so far, after letting the loop run a little.
  const std::string& output(std::chrono::milliseconds wait = 50ms) {
    loop.run_until([] { return false; }, wait);
    char buf[4096];
    for (ssize_t n; (n = ::read(viewer.get(), buf, sizeof buf)) > 0;)
      seen.append(buf, static_cast<size_t>(n));
    return seen;
  }
  size_t count(const std::string& text) {
    size_t n = 0;
    for (size_t at = output().find(text); at != std::string::npos; at = seen.find(text, at + 1)) ++n;
    return n;
  }
};

}  // namespace

TEST_CASE("a domain running before the broker came is no news", "[hub_directory]") {
  Fixture f(xen::DomainState::running, 3);
  CHECK(f.output().find("[xcg:") == std::string::npos);
  CHECK(f.xen.consoles_opened == 1);
}

TEST_CASE("a start is announced once, with the domid", "[hub_directory]") {
  Fixture f;
  f.xen.set("web1", xen::DomainState::running, 7);
  CHECK(f.count("[xcg: web1 started, domid 7]") == 1);
  f.xen.set("web1", xen::DomainState::running, 7);  // the same again: nothing new
  CHECK(f.count("[xcg:") == 1);
}

TEST_CASE("a Xen reboot is one line with the new domid, not a stop and a start", "[hub_directory]") {
  Fixture f(xen::DomainState::running, 3);
  f.xen.set("web1", xen::DomainState::shut_off, 3, /*rebooting=*/true);
  f.xen.set("web1", xen::DomainState::shut_off, std::nullopt, /*rebooting=*/true);
  f.xen.set("web1", xen::DomainState::running, 4);
  CHECK(f.count("[xcg: web1 rebooted, new domid 4]") == 1);
  CHECK(f.count("[xcg:") == 1);
}

TEST_CASE("a reboot that does not come back in time is announced once the window closes", "[hub_directory]") {
  Fixture f(xen::DomainState::running, 3);
  f.xen.set("web1", xen::DomainState::shut_off, std::nullopt, /*rebooting=*/true);
  CHECK(f.count("[xcg:") == 0);
  f.output(400ms);  // past the 200 ms window
  CHECK(f.count("[xcg: web1 is shut off]") == 1);
  f.xen.set("web1", xen::DomainState::shut_off, std::nullopt, /*rebooting=*/true);  // seen again
  CHECK(f.count("[xcg:") == 1);
}

TEST_CASE("a customer's reboot holds the stop notice back; a crash is told at once", "[hub_directory]") {
  Fixture f(xen::DomainState::running, 3);
  f.hubs->action_started("web1", xen::Lifecycle::reboot);
  f.xen.set("web1", xen::DomainState::shut_off, std::nullopt);
  CHECK(f.count("[xcg:") == 0);
  f.xen.set("web1", xen::DomainState::running, 5);
  CHECK(f.count("[xcg: web1 rebooted, new domid 5]") == 1);
  f.xen.set("web1", xen::DomainState::crashed, 5);
  CHECK(f.count("[xcg: web1 is crashed]") == 1);
}

TEST_CASE("a suspended domain keeps its console and its viewers hear nothing", "[hub_directory]") {
  Fixture f(xen::DomainState::running, 3);
  auto shutting_down = xen::DomainState::shutting_down;
  f.xen.set("web1", shutting_down, 3, /*rebooting=*/false, /*suspended=*/true);  // xl save -c
  CHECK(f.hubs->find("web1")->has_console());
  f.xen.set("web1", xen::DomainState::running, 3);  // resumed
  CHECK(f.count("[xcg:") == 0);
  CHECK(f.xen.consoles_opened == 1);
  // It is typed to and heard from as before.
  REQUIRE(::send(f.xen.guest_ends.front().get(), "still here\r\n", 12, MSG_NOSIGNAL) == 12);
  CHECK(f.output().find("still here") != std::string::npos);

  // xl save: suspended, then gone; the broker has been told it left.
  f.xen.set("web1", shutting_down, 3, /*rebooting=*/false, /*suspended=*/true);
  f.hubs->leave_quietly("web1");
  f.xen.set("web1", xen::DomainState::shut_off, std::nullopt);
  CHECK(f.count("[xcg:") == 0);
  CHECK_FALSE(f.hubs->find("web1")->has_console());
}

TEST_CASE("a failed reboot ends its window: the next stop is told at once", "[hub_directory]") {
  Fixture f(xen::DomainState::running, 3);
  f.hubs->action_started("web1", xen::Lifecycle::reboot);
  f.hubs->action_failed("web1", xen::Lifecycle::reboot);
  f.xen.set("web1", xen::DomainState::shut_off, std::nullopt);
  CHECK(f.count("[xcg: web1 is shut off]") == 1);
}

TEST_CASE("domains come and go: an added one quietly, a removed one's hub closes after the grace",
          "[hub_directory]") {
  Fixture f(xen::DomainState::running, 3);
  config::Domain db1;
  db1.name = "db1";
  REQUIRE(f.hubs->add_domain(db1));
  CHECK(f.hubs->find("db1") != nullptr);
  f.hubs->remove_domain("web1");
  CHECK(f.hubs->find("web1") == nullptr);
  f.output(10ms);
  char c;
  CHECK(::read(f.viewer.get(), &c, 1) < 0);  // still open during the grace
  f.output(200ms);
  CHECK(::read(f.viewer.get(), &c, 1) == 0);  // closed after it
}

TEST_CASE("the presence listener hears of every domain at once, then of each change", "[hub_directory]") {
  Fixture f(xen::DomainState::running, 3);
  std::vector<std::string> heard;
  f.hubs->set_presence_listener([&](const std::string& domain, HubDirectory::Presence p) {
    heard.push_back(domain + (p == HubDirectory::Presence::running       ? " running"
                              : p == HubDirectory::Presence::not_running ? " not running"
                                                                         : " removed"));
  });
  CHECK(heard == std::vector<std::string>{"web1 running"});
  f.xen.set("web1", xen::DomainState::shut_off, {});
  f.hubs->remove_domain("web1");
  CHECK(heard == std::vector<std::string>{"web1 running", "web1 not running", "web1 removed"});
}
