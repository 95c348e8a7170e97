// XenHypervisor against the fake xenstored (through the real libxenstore), a fake domain-info
// source in place of libxenctrl, real ptys in place of xenconsoled's, and shell scripts in
// place of xl. What only real Xen can show is left to the QEMU test bed.
#include <fcntl.h>
#include <sys/file.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "base/event_loop.h"
#include "tests/xen/fake_xenstored.h"
#include "tests/xen/xen_test_support.h"
#include "xen/xen_hypervisor.h"

namespace xcg::xen::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr auto kDeadline = 5s;

struct Xen {
  TempDir dir;
  std::unique_ptr<FakeXenstored> xenstored = std::make_unique<FakeXenstored>(dir / "socket");
  ScopedEnv env{"XENSTORED_PATH", xenstored->socket_path()};
  EventLoop loop;
  FakeDomainInfo* info = nullptr;  // owned by `xen`
  std::unique_ptr<XenHypervisor> xen;
  std::vector<std::string> changes;
  std::vector<std::string> lefts;
  size_t changes_before_left = 0;  // console-changed notices heard when the last left one came

  Xen() {
    // What every dom0 has.
    xenstored->write("/local/domain/0/name", "Domain-0");
    write_file(dir / "xl", "#!/bin/sh\nexit 0\n", fs::perms::owner_all);
  }

  void start(std::vector<DomainSpec> specs, XenOptions options = {}) {
    options.toolstack = dir / "xl";
    options.lock_dir = dir.path();
    auto store = XenStore::open();
    REQUIRE(store);
    auto fake = std::make_unique<FakeDomainInfo>();
    info = fake.get();
    xen = std::make_unique<XenHypervisor>(loop, std::move(specs), std::move(options), std::move(*store),
                                          std::move(fake));
    xen->set_console_changed([this](const std::string& name) { changes.push_back(name); });
    xen->set_domain_left([this](const std::string& name) {
      lefts.push_back(name);
      changes_before_left = changes.size();
    });
  }
  void start_web1_db1(XenOptions options = {}) {
    start({{.name = "web1"}, {.name = "db1"}}, std::move(options));
  }

  // What libxl and xenconsoled leave in xenstore for a domain (xenconsoled's tty may come later).
  void create(uint32_t domid, const std::string& name, const std::string& tty = "",
              DomainInfo domain_info = {}) {
    domain_info.domid = domid;
    if (!domain_info.memory_kib) domain_info = running_domain(domid);
    info->set(domain_info);
    std::string base = "/local/domain/" + std::to_string(domid);
    xenstored->write(base + "/name", name);
    xenstored->write(base + "/vm", "/vm/uuid-" + std::to_string(domid));
    auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
    xenstored->write("/vm/uuid-" + std::to_string(domid) + "/start_time",
                     std::to_string(now.count() - 65) + ".42");
    if (!tty.empty()) xenstored->write(base + "/console/tty", tty);
    xenstored->introduce_domain();
    // The backend learns of new domains from the @introduceDomain watch: let it see this one.
    auto served = xen ? xen->domains() : std::vector<std::string>();
    if (std::find(served.begin(), served.end(), name) != served.end())
      REQUIRE(loop.run_until(
          [&] {
            auto s = xen->status(name);
            return s && s->domid == domid;
          },
          kDeadline));
  }
  void destroy(uint32_t domid) {
    info->erase(domid);
    xenstored->remove("/local/domain/" + std::to_string(domid));
    xenstored->release_domain();
  }

  size_t changes_of(const std::string& name) const {
    return std::count(changes.begin(), changes.end(), name);
  }
  // Runs the loop until `name` has had `count` console-changed notices in all.
  bool wait_changes(const std::string& name, size_t count) {
    return loop.run_until([&] { return changes_of(name) >= count; }, kDeadline);
  }
  DomainStatus status(const std::string& name) {
    auto s = xen->status(name);
    REQUIRE(s);
    return *s;
  }
  // The action's result, running the loop until it comes (xl runs without blocking it).
  Result<void> act(const std::string& name, Lifecycle action) {
    return wait_done([&](Hypervisor::ActDone done) { xen->act_async(name, action, std::move(done)); });
  }
  Result<void> sysrq(const std::string& name, char key) {
    return wait_done([&](Hypervisor::ActDone done) { xen->send_sysrq(name, key, std::move(done)); });
  }
  template <typename Start>
  Result<void> wait_done(Start start) {
    std::optional<Result<void>> result;
    start([&](Result<void> r) { result = std::move(r); });
    REQUIRE(loop.run_until([&] { return result.has_value(); }, kDeadline));
    return std::move(*result);
  }
};

// The console works both ways: guest output reaches xcg, xcg's input reaches the guest.
void check_round_trip(int console, Pty& pty, const std::string& tag) {
  std::string out = "boot " + tag + "\r\n";
  REQUIRE(::write(pty.master.get(), out.data(), out.size()) == static_cast<ssize_t>(out.size()));
  CHECK_THAT(read_until(console, out, kDeadline), Catch::Contains(out));
  std::string in = "ls " + tag + "\r";
  REQUIRE(::write(console, in.data(), in.size()) == static_cast<ssize_t>(in.size()));
  CHECK_THAT(read_until(pty.master.get(), in, kDeadline), Catch::Contains(in));
}

bool locked_by_someone(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return false;
  return ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
}

TEST_CASE("state_of: what libxenctrl's flags mean to a customer") {
  DomainInfo d = running_domain(3);
  CHECK(state_of(d) == DomainState::running);
  d.paused = true;
  CHECK(state_of(d) == DomainState::running);
  d.shutdown = true;
  d.reason = ShutdownReason::reboot;
  CHECK(state_of(d) == DomainState::shutting_down);
  d.reason = ShutdownReason::crash;
  CHECK(state_of(d) == DomainState::crashed);
  DomainInfo dying = running_domain(4);
  dying.dying = true;
  CHECK(state_of(dying) == DomainState::shutting_down);
}

TEST_CASE("status finds a domain by its name in xenstore and asks libxenctrl about it") {
  Xen x;
  x.start_web1_db1();
  x.create(3, "web1");
  x.create(4, "stranger");  // not configured: none of xcg's business
  auto web1 = x.status("web1");
  CHECK(web1.state == DomainState::running);
  CHECK(web1.domid == 3u);
  CHECK(web1.memory_mib == 512);
  CHECK(web1.vcpus == 2);
  CHECK(web1.cpu_time == std::chrono::seconds(75));
  CHECK(web1.uptime >= 65s);
  CHECK(web1.uptime < 80s);
  CHECK_THAT(format_status(web1), Catch::StartsWith("web1: running, domid 3, 512 MiB, 2 vCPUs, up 0:01:"));
  CHECK_THAT(format_status(web1), Catch::EndsWith(", cpu 0:01:15"));

  auto db1 = x.status("db1");
  CHECK(db1.state == DomainState::shut_off);
  CHECK_FALSE(db1.domid);
  CHECK(format_status(db1) == "db1: shut off");

  auto unknown = x.xen->status("stranger");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code == Errc::not_found);
  CHECK(x.xen->domains() == std::vector<std::string>{"db1", "web1"});
}

TEST_CASE("a name left in xenstore without a domain behind it is shut off") {
  Xen x;
  x.start_web1_db1();
  x.create(3, "web1");
  x.info->erase(3);  // libxl died before cleaning up xenstore
  CHECK(x.status("web1").state == DomainState::shut_off);
}

TEST_CASE("of two domains under one name, the live one counts") {
  Xen x;
  x.start_web1_db1();
  DomainInfo old = running_domain(3);
  old.dying = true;
  x.create(3, "web1", "", old);
  x.create(4, "web1");
  CHECK(x.status("web1").domid == 4u);
  x.create(2, "db1");
  x.create(5, "db1");
  CHECK(x.status("db1").domid == 5u);  // both alive: the newer
}

TEST_CASE("status fails cleanly when libxenctrl does") {
  Xen x;
  x.start_web1_db1();
  x.create(3, "web1");
  x.info->set_failing(true);
  auto s = x.xen->status("web1");
  REQUIRE_FALSE(s);
  CHECK(s.error().code == Errc::unavailable);
  CHECK(s.error().message == "libxenctrl: domain info: Permission denied");
  CHECK(x.xen->status("db1"));  // nothing to ask libxenctrl about
}

TEST_CASE("open_console opens the PV console's tty raw and takes the xenconsole lock") {
  Xen x;
  x.start_web1_db1();
  Pty pty;
  x.create(3, "web1", pty.path);
  auto console = x.xen->open_console("web1");
  REQUIRE(console);
  check_round_trip(console->get(), pty, "one");
  termios tio{};
  REQUIRE(::tcgetattr(console->get(), &tio) == 0);
  CHECK((tio.c_lflag & (ICANON | ECHO | ISIG)) == 0);
  CHECK((::fcntl(console->get(), F_GETFL) & O_NONBLOCK) != 0);
  CHECK((::fcntl(console->get(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK(locked_by_someone(x.dir / "xenconsole.3"));

  // The hub may ask again (say its descriptor broke): the lock it already has is kept.
  auto again = x.xen->open_console("web1");
  REQUIRE(again);
  CHECK(locked_by_someone(x.dir / "xenconsole.3"));

  auto off = x.xen->open_console("db1");
  REQUIRE_FALSE(off);
  CHECK(off.error().code == Errc::wrong_state);
  CHECK(off.error().message == "db1 is not running (shut off)");
}

TEST_CASE("console type: PV, serial, or auto (serial for HVM guests that have one)") {
  Xen x;
  x.start({{.name = "hvm-auto"},
           {.name = "hvm-pv", .console = ConsoleType::pv},
           {.name = "hvm-serial", .console = ConsoleType::serial},
           {.name = "pv-auto"},
           {.name = "pv-serial", .console = ConsoleType::serial},
           {.name = "hvm-noserial"}});
  DomainInfo hvm = running_domain(0);
  hvm.hvm = true;
  std::vector<std::unique_ptr<Pty>> ptys;
  auto domain = [&](uint32_t domid, const std::string& name, const DomainInfo& kind, bool serial) {
    auto& pv = *ptys.emplace_back(std::make_unique<Pty>());
    x.create(domid, name, pv.path, kind);
    if (!serial) return std::pair<Pty*, Pty*>(&pv, nullptr);
    auto& com = *ptys.emplace_back(std::make_unique<Pty>());
    x.xenstored->write("/local/domain/" + std::to_string(domid) + "/serial/0/tty", com.path);
    return std::pair<Pty*, Pty*>(&pv, &com);
  };
  auto [hvm_auto_pv, hvm_auto_serial] = domain(1, "hvm-auto", hvm, true);
  auto [hvm_pv_pv, hvm_pv_serial] = domain(2, "hvm-pv", hvm, true);
  auto [hvm_serial_pv, hvm_serial_serial] = domain(3, "hvm-serial", hvm, true);
  auto [pv_auto_pv, pv_auto_serial] = domain(4, "pv-auto", running_domain(4), false);
  domain(5, "pv-serial", running_domain(5), false);
  auto [noserial_pv, noserial_serial] = domain(6, "hvm-noserial", hvm, false);

  auto open = [&](const std::string& name) {
    auto fd = x.xen->open_console(name);
    REQUIRE(fd);
    return std::move(*fd);
  };
  check_round_trip(open("hvm-auto").get(), *hvm_auto_serial, "a");
  check_round_trip(open("hvm-pv").get(), *hvm_pv_pv, "b");
  check_round_trip(open("hvm-serial").get(), *hvm_serial_serial, "c");
  check_round_trip(open("pv-auto").get(), *pv_auto_pv, "d");
  check_round_trip(open("hvm-noserial").get(), *noserial_pv, "e");  // falls back, as xenconsole
  auto none = x.xen->open_console("pv-serial");
  REQUIRE_FALSE(none);
  CHECK(none.error().message == "the console of pv-serial is not ready yet");
}

TEST_CASE("a console that appears after the domain is announced when it does") {
  Xen x;
  x.start_web1_db1();
  x.create(3, "web1");  // built, but xenconsoled has not written the tty yet
  REQUIRE(x.wait_changes("web1", 1));
  auto early = x.xen->open_console("web1");
  REQUIRE_FALSE(early);
  CHECK(early.error().code == Errc::unavailable);
  CHECK(early.error().message == "the console of web1 is not ready yet");

  Pty pty;
  x.xenstored->write("/local/domain/3/console/tty", pty.path);
  REQUIRE(x.wait_changes("web1", 2));
  auto console = x.xen->open_console("web1");
  REQUIRE(console);
  check_round_trip(console->get(), pty, "late");
}

TEST_CASE("a domain is followed across a reboot: new domid, new pty, one lock at a time") {
  Xen x;
  x.start_web1_db1();
  Pty first;
  x.create(3, "web1", first.path);
  REQUIRE(x.wait_changes("web1", 1));
  auto console = x.xen->open_console("web1");
  REQUIRE(console);
  check_round_trip(console->get(), first, "first");

  // `xl reboot`: the guest shuts down with reason reboot...
  DomainInfo down = running_domain(3);
  down.shutdown = true;
  down.reason = ShutdownReason::reboot;
  x.info->set(down);
  x.xenstored->release_domain();
  REQUIRE(x.wait_changes("web1", 2));
  CHECK(x.status("web1").state == DomainState::shutting_down);
  CHECK(x.xen->open_console("web1").error().code == Errc::wrong_state);

  // ... xl destroys it ...
  x.destroy(3);
  REQUIRE(x.wait_changes("web1", 3));
  CHECK(x.status("web1").state == DomainState::shut_off);
  CHECK_FALSE(fs::exists(x.dir / "xenconsole.3"));  // released with the domain

  // ... and builds it again under the same name; xenconsoled makes a new pty.
  x.create(4, "web1");
  REQUIRE(x.wait_changes("web1", 4));
  auto s = x.status("web1");
  CHECK(s.state == DomainState::running);
  CHECK(s.domid == 4u);
  Pty second;
  x.xenstored->write("/local/domain/4/console/tty", second.path);
  REQUIRE(x.wait_changes("web1", 5));
  auto next = x.xen->open_console("web1");
  REQUIRE(next);
  check_round_trip(next->get(), second, "second");
  CHECK(locked_by_someone(x.dir / "xenconsole.4"));
  CHECK(x.changes_of("db1") == 0);
  // The watch on the old domain's tty went with it: two special paths and one tty.
  REQUIRE(x.loop.run_until([&] { return x.xenstored->watch_count() == 3; }, kDeadline));
}

TEST_CASE("a crash is announced and shows in the status") {
  Xen x;
  x.start_web1_db1();
  Pty pty;
  x.create(3, "web1", pty.path);
  REQUIRE(x.wait_changes("web1", 1));
  DomainInfo crashed = running_domain(3);
  crashed.shutdown = true;
  crashed.reason = ShutdownReason::crash;
  x.info->set(crashed);
  x.xenstored->release_domain();
  REQUIRE(x.wait_changes("web1", 2));
  CHECK(x.status("web1").state == DomainState::crashed);
  CHECK(x.xen->open_console("web1").error().message == "web1 is not running (crashed)");
}

TEST_CASE("while an operator's xl console holds the lock, xcg waits and tries again") {
  Xen x;
  XenOptions options;
  options.lock_retry = 100ms;
  x.start_web1_db1(options);
  Pty pty;
  x.create(3, "web1", pty.path);
  REQUIRE(x.wait_changes("web1", 1));

  std::string path = x.dir / "xenconsole.3";
  UniqueFd operator_lock(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  REQUIRE(::flock(operator_lock.get(), LOCK_EX | LOCK_NB) == 0);
  auto busy = x.xen->open_console("web1");
  REQUIRE_FALSE(busy);
  CHECK(busy.error().code == Errc::unavailable);
  CHECK(busy.error().message == "the console of web1 is in use by another program (xl console?)");

  REQUIRE(::unlink(path.c_str()) == 0);  // xenconsole's console_unlock
  operator_lock.reset();
  REQUIRE(x.wait_changes("web1", 2));  // the retry
  auto console = x.xen->open_console("web1");
  REQUIRE(console);
  check_round_trip(console->get(), pty, "after");
}

TEST_CASE("a tty node naming anything but a pty is refused") {
  Xen x;
  x.start_web1_db1();
  x.create(3, "web1", "/etc/passwd");
  auto console = x.xen->open_console("web1");
  REQUIRE_FALSE(console);
  CHECK(console.error().message == "the console of web1 is not usable");
}

TEST_CASE("a tty node the guest owns is refused, however plausible its pty") {
  // libxl makes console/tty read-only for the guest; a node the guest could write would let it
  // point the root broker at any file.
  Xen x;
  x.start_web1_db1();
  Pty pty;
  x.create(3, "web1", pty.path);
  x.xenstored->set_owner("/local/domain/3/console/tty", 3);
  auto console = x.xen->open_console("web1");
  REQUIRE_FALSE(console);
  CHECK(console.error().message == "the console of web1 is not usable");

  x.xenstored->set_owner("/local/domain/3/console/tty", 0);
  auto owned_by_dom0 = x.xen->open_console("web1");
  REQUIRE(owned_by_dom0);
  check_round_trip(owned_by_dom0->get(), pty, "dom0");
}

TEST_CASE("a console tty is opened only if it is a pty slave") {
  TempDir dir;
  write_file(dir / "regular", "not a tty\n", fs::perms::owner_read | fs::perms::owner_write);
  // /dev/ptmx is a tty (tcgetattr works on the master it opens), but no pty slave.
  for (const std::string& path : {std::string("/dev/null"), dir / "regular", std::string("/dev/ptmx")}) {
    CAPTURE(path);
    auto fd = open_raw_tty(path);
    REQUIRE_FALSE(fd);
    CHECK(fd.error().message == path + " is not a pty slave");
  }
  Pty pty;
  auto slave = open_raw_tty(pty.path);
  REQUIRE(slave);
  check_round_trip(slave->get(), pty, "slave");
}

// A fake xl that records its arguments and exits with `status`.
void fake_xl(Xen& x, const std::string& body = "exit 0") {
  write_file(
      x.dir / "xl",
      "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> " + x.dir / "argv" + "\n" + body + "\n",
      fs::perms::owner_all);
}

TEST_CASE("lifecycle actions run xl with the domid or the config file") {
  Xen x;
  x.start({{.name = "web1"}, {.name = "db1", .config_file = x.dir / "db1.cfg"}});
  fake_xl(x);
  x.create(3, "web1");

  REQUIRE(x.act("web1", Lifecycle::shutdown));
  CHECK(slurp(x.dir / "argv") == "shutdown\n-F\n3\n");
  fs::remove(x.dir / "argv");
  REQUIRE(x.act("web1", Lifecycle::reboot));
  CHECK(slurp(x.dir / "argv") == "reboot\n-F\n3\n");
  fs::remove(x.dir / "argv");
  REQUIRE(x.act("web1", Lifecycle::destroy));
  CHECK(slurp(x.dir / "argv") == "destroy\n3\n");
  fs::remove(x.dir / "argv");

  // Refused before xl runs at all.
  auto again = x.act("web1", Lifecycle::start);
  REQUIRE_FALSE(again);
  CHECK(again.error().code == Errc::wrong_state);
  CHECK(again.error().message == "web1 is already running");
  auto off = x.act("db1", Lifecycle::shutdown);
  REQUIRE_FALSE(off);
  CHECK(off.error().message == "db1 is not running (shut off)");
  CHECK(x.act("db1", Lifecycle::destroy).error().message == "db1 is not running (shut off)");
  CHECK_FALSE(fs::exists(x.dir / "argv"));

  // A start whose xl "succeeds" without making the domain is not a success.
  auto start = x.act("db1", Lifecycle::start);
  CHECK(slurp(x.dir / "argv") == "create\n" + x.dir / "db1.cfg" + "\n");
  REQUIRE_FALSE(start);
  CHECK(start.error().message == "db1 did not start; the gateway's log says why");
  CHECK(x.act("nobody", Lifecycle::start).error().code == Errc::not_found);
}

TEST_CASE("a failing xl is one line for the customer") {
  Xen x;
  x.start_web1_db1();
  fake_xl(x,
          "echo 'Parsing config from /etc/xen/web1.cfg' >&2\n"
          "echo 'Failed to read config file: /etc/xen/web1.cfg: No such file or directory' >&2\nexit 1");
  auto r = x.act("web1", Lifecycle::start);
  REQUIRE_FALSE(r);
  CHECK(r.error().message ==
        "cannot start web1: Failed to read config file: /etc/xen/web1.cfg: No such file or directory");
  CHECK(slurp(x.dir / "argv") == "create\n/etc/xen/web1.cfg\n");  // the default config file
}

TEST_CASE("an xl that hangs is cut off at the timeout") {
  Xen x;
  XenOptions options;
  options.timeout = 300ms;
  x.start_web1_db1(options);
  fake_xl(x, "exec sleep 30");
  x.create(3, "web1");
  auto r = x.act("web1", Lifecycle::shutdown);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::timeout);
  CHECK(r.error().message == "cannot shutdown web1: xl shutdown did not finish within 300 ms");
}

TEST_CASE("act_async starts a domain without holding up the event loop") {
  Xen x;
  x.start_web1_db1();
  std::string go = x.dir / "go";
  fake_xl(x, "i=0; while [ ! -e " + go + " ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done");
  std::optional<Result<void>> result;
  x.xen->act_async("web1", Lifecycle::start, [&](Result<void> r) { result = std::move(r); });
  CHECK_FALSE(result);
  // While xl works, the loop goes on: here it sees the domain being built.
  Pty pty;
  x.create(7, "web1", pty.path);
  REQUIRE(x.wait_changes("web1", 1));
  CHECK_FALSE(result);
  write_file(go, "", fs::perms::owner_read);
  REQUIRE(x.loop.run_until([&] { return result.has_value(); }, kDeadline));
  CHECK(*result);
  CHECK(slurp(x.dir / "argv") == "create\n/etc/xen/web1.cfg\n");

  std::optional<Result<void>> refused;
  x.xen->act_async("web1", Lifecycle::start, [&](Result<void> r) { refused = std::move(r); });
  REQUIRE(refused);  // decided at once, without xl
  CHECK(refused->error().message == "web1 is already running");
}

TEST_CASE("SysRq goes to control/sysrq as libxl writes it; an NMI through xl") {
  Xen x;
  x.start_web1_db1();
  fake_xl(x);
  x.create(3, "web1");
  REQUIRE(x.sysrq("web1", 's'));
  CHECK(x.xenstored->read("/local/domain/3/control/sysrq") == "s");
  REQUIRE(x.sysrq("web1", 0));
  CHECK(slurp(x.dir / "argv") == "trigger\n3\nnmi\n");
  CHECK(x.sysrq("web1", 'S').error().code == Errc::invalid_input);
  CHECK(x.sysrq("db1", 'b').error().code == Errc::wrong_state);
}

TEST_CASE("an NMI does not hold up the event loop while xl trigger runs") {
  Xen x;
  x.start_web1_db1();
  std::string go = x.dir / "go";
  fake_xl(x, "i=0; while [ ! -e " + go +
                 " ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done\n"
                 "echo 'libxl: error: libxl_domain.c:1:libxl_send_trigger: trigger failed' >&2; exit 1");
  x.create(3, "web1");
  std::optional<Result<void>> result;
  x.xen->send_sysrq("web1", 0, [&](Result<void> r) { result = std::move(r); });
  CHECK_FALSE(result);
  // The loop goes on while xl waits: here it sees db1 appear.
  x.create(4, "db1");
  REQUIRE(x.wait_changes("db1", 1));
  CHECK_FALSE(result);
  write_file(go, "", fs::perms::owner_read);
  REQUIRE(x.loop.run_until([&] { return result.has_value(); }, kDeadline));
  REQUIRE_FALSE(*result);
  CHECK(result->error().message == "cannot send an NMI to web1: trigger failed");
}

TEST_CASE("a status request reads its own domain's nodes, not every domain's") {
  Xen x;
  x.start_web1_db1();
  for (uint32_t domid = 10; domid < 60; ++domid) x.create(domid, fmt::format("other{}", domid));
  x.create(3, "web1");  // returns once its @introduceDomain is handled, so the others' too
  size_t before = x.xenstored->requests_served();
  REQUIRE(x.status("web1").domid == 3u);
  CHECK(x.status("db1").state == DomainState::shut_off);
  // web1: its name node, /vm and start_time; db1: nothing. A scan would read 51 name nodes.
  CHECK(x.xenstored->requests_served() - before <= 6);
}

TEST_CASE("a domain renamed away (on_crash = preserve) stops counting at once") {
  Xen x;
  x.start_web1_db1();
  x.create(3, "web1");
  REQUIRE(x.status("web1").domid == 3u);
  // xl renames a preserved crashed domain; no domain is introduced or released.
  x.xenstored->write("/local/domain/3/name", "web1--incarnation-1");
  auto s = x.status("web1");
  CHECK(s.state == DomainState::shut_off);
  CHECK_FALSE(s.domid);
}

TEST_CASE("without xenstored, requests fail with a reason instead of hanging") {
  Xen x;
  x.start_web1_db1();
  x.create(3, "web1");
  x.xenstored.reset();
  // libxenstore's reader thread notices the closed socket; requests then fail at once.
  REQUIRE(x.loop.run_until(
      [&] {
        auto s = x.xen->status("web1");
        return !s && s.error().code == Errc::unavailable;
      },
      kDeadline));
  CHECK(x.xen->open_console("web1").error().code == Errc::unavailable);
}

// --- domains that leave the host: xl save, xl migrate ---

// The guest shuts down with `reason`, as the watch on @releaseDomain tells.
void shut_down(Xen& x, uint32_t domid, ShutdownReason reason) {
  DomainInfo down = running_domain(domid);
  down.shutdown = true;
  down.reason = reason;
  x.info->set(down);
  x.xenstored->release_domain();
}

TEST_CASE("a domain suspended and then gone has left this host (xl save)") {
  Xen x;
  x.start_web1_db1();
  Pty pty;
  x.create(3, "web1", pty.path);
  REQUIRE(x.wait_changes("web1", 1));
  auto console = x.xen->open_console("web1");
  REQUIRE(console);

  shut_down(x, 3, ShutdownReason::suspend);
  REQUIRE(x.wait_changes("web1", 2));
  auto s = x.status("web1");
  CHECK(s.suspended);
  CHECK(s.domid == 3u);
  CHECK(x.lefts.empty());  // it may yet resume (xl save -c)
  CHECK(locked_by_someone(x.dir / "xenconsole.3"));

  x.destroy(3);  // its memory is in the file: xl destroys it
  // Asked before the watch tells (a viewer's hub may be): no ordinary stop to announce yet.
  CHECK(x.status("web1").suspended);
  REQUIRE(x.wait_changes("web1", 3));
  CHECK(x.lefts == std::vector<std::string>{"web1"});
  CHECK(x.changes_before_left == 2);  // told before the console change of the same moment
  CHECK(x.status("web1").state == DomainState::shut_off);
  CHECK_FALSE(x.status("web1").suspended);
  CHECK_FALSE(fs::exists(x.dir / "xenconsole.3"));
}

TEST_CASE("a domain suspended whose name comes back on a new domid has left (xl migrate to this host)") {
  Xen x;
  x.start_web1_db1();
  x.create(3, "web1");
  REQUIRE(x.wait_changes("web1", 1));
  shut_down(x, 3, ShutdownReason::suspend);
  REQUIRE(x.wait_changes("web1", 2));
  CHECK(x.lefts.empty());
  // xl renames the source away and the incoming domain to the name; the source goes later.
  x.xenstored->write("/local/domain/3/name", "web1--migratedaway");
  x.create(4, "web1");
  CHECK(x.lefts == std::vector<std::string>{"web1"});
  CHECK(x.status("web1").domid == 4u);
  x.destroy(3);
  x.create(5, "db1");  // handled after the release: web1 is told nothing more
  CHECK(x.lefts.size() == 1);
}

TEST_CASE("poweroff, reboot, crash and xl save -c do not leave the host") {
  Xen x;
  x.start_web1_db1();
  uint32_t domid = 3;
  size_t seen = 0;
  for (auto reason : {ShutdownReason::poweroff, ShutdownReason::reboot, ShutdownReason::crash}) {
    CAPTURE(static_cast<unsigned>(reason));
    x.create(domid, "web1");
    shut_down(x, domid, reason);
    REQUIRE(x.wait_changes("web1", seen + 2));
    CHECK_FALSE(x.status("web1").suspended);
    x.destroy(domid);
    REQUIRE(x.wait_changes("web1", seen + 3));
    seen = x.changes_of("web1");
    ++domid;
  }
  // A reboot's new domain under the same name.
  x.create(domid, "web1");
  REQUIRE(x.wait_changes("web1", seen + 1));

  // xl save -c: suspended, then the same domid runs again, its console kept.
  shut_down(x, domid, ShutdownReason::suspend);
  REQUIRE(x.wait_changes("web1", seen + 2));
  CHECK(x.status("web1").suspended);
  x.info->set(running_domain(domid));
  x.xenstored->release_domain();  // what fires is beside the point: the state is read afresh
  REQUIRE(x.wait_changes("web1", seen + 3));
  auto s = x.status("web1");
  CHECK(s.state == DomainState::running);
  CHECK(s.domid == domid);
  // Gone later, without a new suspend: an ordinary stop.
  x.destroy(domid);
  REQUIRE(x.wait_changes("web1", seen + 4));
  CHECK(x.lefts.empty());
}

// --- domains added and removed by a config reload ---

TEST_CASE("a domain added later is followed by name like those from the start") {
  Xen x;
  x.start_web1_db1();
  Pty first;
  x.create(5, "web3", first.path);  // already running when the operator adds it
  CHECK(x.xen->status("web3").error().code == Errc::not_found);

  REQUIRE(x.xen->add_domain({.name = "web3"}));
  CHECK(x.xen->domains() == std::vector<std::string>{"db1", "web1", "web3"});
  CHECK(x.changes_of("web3") == 1);  // announced at once: the hub can open the console now
  auto s = x.status("web3");
  CHECK(s.state == DomainState::running);
  CHECK(s.domid == 5u);
  auto console = x.xen->open_console("web3");
  REQUIRE(console);
  check_round_trip(console->get(), first, "added");
  CHECK(locked_by_someone(x.dir / "xenconsole.5"));
  CHECK(x.xenstored->watch_count() == 3);  // its tty too

  // Followed across a reboot, as any domain.
  x.destroy(5);
  REQUIRE(x.wait_changes("web3", 2));
  CHECK(x.status("web3").state == DomainState::shut_off);
  CHECK_FALSE(fs::exists(x.dir / "xenconsole.5"));
  Pty second;
  x.create(6, "web3", second.path);
  REQUIRE(x.wait_changes("web3", 3));
  auto next = x.xen->open_console("web3");
  REQUIRE(next);
  check_round_trip(next->get(), second, "rebooted");

  // A name added before its domain exists is found when the domain is built.
  REQUIRE(x.xen->add_domain({.name = "web4", .console = ConsoleType::pv}));
  CHECK(x.changes_of("web4") == 0);
  CHECK(x.status("web4").state == DomainState::shut_off);
  Pty third;
  x.create(7, "web4", third.path);
  REQUIRE(x.wait_changes("web4", 1));
  CHECK(x.status("web4").domid == 7u);

  auto twice = x.xen->add_domain({.name = "web3"});
  REQUIRE_FALSE(twice);
  CHECK(twice.error().code == Errc::invalid_input);
  CHECK(x.xen->add_domain({}).error().code == Errc::invalid_input);
  CHECK(x.changes_of("web1") == 0);
  CHECK(x.changes_of("db1") == 0);
}

TEST_CASE("a removed domain is left running, no longer followed, and its console lock let go") {
  Xen x;
  x.start_web1_db1();
  fake_xl(x);
  Pty pty;
  x.create(3, "web1", pty.path);
  REQUIRE(x.wait_changes("web1", 1));
  auto console = x.xen->open_console("web1");
  REQUIRE(console);
  REQUIRE(locked_by_someone(x.dir / "xenconsole.3"));
  REQUIRE(x.xenstored->watch_count() == 3);

  REQUIRE(x.xen->remove_domain("web1"));
  CHECK(x.xen->domains() == std::vector<std::string>{"db1"});
  CHECK_FALSE(locked_by_someone(x.dir / "xenconsole.3"));
  CHECK_FALSE(fs::exists(x.dir / "xenconsole.3"));
  CHECK(x.xenstored->watch_count() == 2);
  CHECK(x.xen->status("web1").error().code == Errc::not_found);
  CHECK(x.xen->open_console("web1").error().code == Errc::not_found);
  CHECK(x.act("web1", Lifecycle::destroy).error().code == Errc::not_found);
  CHECK(x.xen->remove_domain("web1").error().code == Errc::not_found);
  // The domain itself is untouched: no xl ran, xenstore still names it.
  CHECK_FALSE(fs::exists(x.dir / "argv"));
  CHECK(x.xenstored->read("/local/domain/3/name") == "web1");
  CHECK(x.changes_of("web1") == 1);

  // What happens to it from now on is none of xcg's business. (Events are handled in order:
  // once db1's is seen, web1's has been too.)
  x.destroy(3);
  x.create(4, "db1");
  REQUIRE(x.wait_changes("db1", 1));
  CHECK(x.changes_of("web1") == 1);

  // Added back, it is followed again.
  Pty again;
  x.create(5, "web1", again.path);
  REQUIRE(x.xen->add_domain({.name = "web1"}));
  CHECK(x.changes_of("web1") == 2);
  CHECK(x.status("web1").domid == 5u);
  auto reopened = x.xen->open_console("web1");
  REQUIRE(reopened);
  check_round_trip(reopened->get(), again, "back");
}

TEST_CASE("a domain removed while xl works on it: the answer still comes, nothing dangles") {
  Xen x;
  x.start_web1_db1();
  std::string go = x.dir / "go";
  fake_xl(x, "i=0; while [ ! -e " + go + " ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done");
  x.create(3, "web1");
  std::optional<Result<void>> result;
  x.xen->act_async("web1", Lifecycle::shutdown, [&](Result<void> r) { result = std::move(r); });
  REQUIRE_FALSE(result);
  REQUIRE(x.xen->remove_domain("web1"));
  write_file(go, "", fs::perms::owner_read);
  REQUIRE(x.loop.run_until([&] { return result.has_value(); }, kDeadline));
  CHECK(*result);
  CHECK(slurp(x.dir / "argv") == "shutdown\n-F\n3\n");
}

TEST_CASE("XenHypervisor::open without Xen names what is missing, in one line") {
  if (fs::exists("/dev/xen/privcmd")) {
    WARN("skipped: this machine has /dev/xen/privcmd");
    return;
  }
  TempDir dir;
  ScopedEnv env("XENSTORED_PATH", dir / "no-xenstored");
  EventLoop loop;
  XenOptions options;
  options.toolstack = dir / "no-xl";
  options.lock_dir = dir / "no-lock-dir";
  try {
    XenHypervisor::open(loop, {{.name = "web1"}}, options);
    FAIL("open succeeded without Xen");
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    CHECK_THAT(what, Catch::StartsWith("hypervisor xen: no /dev/xen/privcmd"));
    CHECK_THAT(what, Catch::Contains("cannot reach xenstored at " + dir / "no-xenstored"));
    CHECK_THAT(what, Catch::Contains("toolstack " + dir / "no-xl" + ": No such file or directory"));
    CHECK_THAT(what, Catch::Contains("lock_dir " + dir / "no-lock-dir" + " is not a directory"));
    CHECK(what.find('\n') == std::string::npos);
  }
}

}  // namespace
}  // namespace xcg::xen::testing
