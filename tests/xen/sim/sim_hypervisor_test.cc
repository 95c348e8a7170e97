// SimHypervisor with real processes on real ptys. The fake guest lives in the xcg binary, whose
// path comes from XCG_BINARY (meson's test() sets it); the tests that need it are skipped
// with a warning when it is unset.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <termios.h>

#include <fmt/format.h>

#include "base/event_loop.h"
#include "base/log.h"
#include "tests/xen/xen_test_support.h"
#include "xen/sim/sim_hypervisor.h"

namespace xcg::xen {
namespace {

using namespace std::chrono_literals;

constexpr auto kDeadline = 10s;

// Collects a console's output through the event loop and writes input to it.
class ConsoleReader {
 public:
  ConsoleReader(EventLoop& loop, UniqueFd fd) : loop_(loop), fd_(std::move(fd)) {
    loop_.add(fd_.get(), EPOLLIN, "test console", [this](uint32_t) { drain(); });
  }
  ~ConsoleReader() { loop_.remove(fd_.get()); }

  void write(std::string_view s) {
    while (!s.empty()) {
      ssize_t n = ::write(fd_.get(), s.data(), s.size());
      if (n > 0) {
        s.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      REQUIRE((n < 0 && (errno == EAGAIN || errno == EINTR)));
      pollfd p{fd_.get(), POLLOUT, 0};
      REQUIRE(::poll(&p, 1, 5000) == 1);
    }
  }

  // Waits until `text` appears at or after offset `from`.
  bool wait_for(std::string_view text, size_t from = 0) {
    return loop_.run_until([&] { return text_.find(text, from) != std::string::npos; }, kDeadline);
  }
  bool wait_closed() {
    return loop_.run_until([&] { return closed_; }, kDeadline);
  }

  const std::string& text() const { return text_; }
  size_t size() const { return text_.size(); }

 private:
  void drain() {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd_.get(), buf, sizeof buf);
      if (n > 0) {
        text_.append(buf, static_cast<size_t>(n));
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        if (n == 0 || errno != EAGAIN) {  // EIO: every guest side of the pty is closed
          closed_ = true;
          loop_.remove(fd_.get());
        }
        return;
      }
    }
  }

  EventLoop& loop_;
  UniqueFd fd_;
  std::string text_;
  bool closed_ = false;
};

// A SimHypervisor on its own loop, recording console-changed notifications and log lines.
struct Sim {
  explicit Sim(SimOptions options, std::vector<DomainSpec> specs = {{"web1", 512, 1}}) {
    log::set_sink([this](log::Level, std::string_view line) { logs.emplace_back(line); });
    hv = std::make_unique<SimHypervisor>(loop, std::move(specs), std::move(options));
    hv->set_console_changed([this](const std::string& d) { changes.push_back(d); });
  }
  ~Sim() {
    hv.reset();
    log::set_sink(nullptr);
  }

  DomainStatus status(const std::string& d = "web1") {
    auto s = hv->status(d);
    REQUIRE(s);
    return *s;
  }
  bool wait_state(DomainState want, const std::string& d = "web1") {
    return loop.run_until([&] { return status(d).state == want; }, kDeadline);
  }
  std::unique_ptr<ConsoleReader> console(const std::string& d = "web1") {
    auto fd = hv->open_console(d);
    REQUIRE(fd);
    return std::make_unique<ConsoleReader>(loop, std::move(*fd));
  }
  size_t changes_for(const std::string& d = "web1") const {
    return static_cast<size_t>(std::count(changes.begin(), changes.end(), d));
  }
  bool logged(std::string_view text) const {
    for (const auto& l : logs)
      if (l.find(text) != std::string::npos) return true;
    return false;
  }

  EventLoop loop;
  std::vector<std::string> changes;
  std::vector<std::string> logs;
  std::unique_ptr<SimHypervisor> hv;
};

SimOptions command(std::vector<std::string> argv) {
  SimOptions o;
  o.guest_command = std::move(argv);
  return o;
}

// The built-in fake guest, or nullopt (with a warning) when the xcg binary is unknown.
std::optional<SimOptions> fake_guest(bool autostart = false) {
  const char* exe = std::getenv("XCG_BINARY");
  if (!exe || !*exe) {
    WARN("XCG_BINARY is not set: skipping, this test runs the fake guest in the xcg binary");
    return std::nullopt;
  }
  SimOptions o;
  o.self_exe = exe;
  o.autostart = autostart;
  return o;
}

// Gone, or a zombie nobody has reaped yet.
bool process_dead(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');
  return stat.empty() || (paren != std::string::npos && paren + 2 < stat.size() &&
                          (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X'));
}

}  // namespace

TEST_CASE("state and lifecycle names", "[xen]") {
  CHECK(state_name(DomainState::running) == "running");
  CHECK(state_name(DomainState::shutting_down) == "shutting down");
  CHECK(state_name(DomainState::shut_off) == "shut off");
  CHECK(state_name(DomainState::crashed) == "crashed");
  CHECK(lifecycle_name(Lifecycle::start) == "start");
  CHECK(lifecycle_name(Lifecycle::shutdown) == "shutdown");
  CHECK(lifecycle_name(Lifecycle::reboot) == "reboot");
  CHECK(lifecycle_name(Lifecycle::destroy) == "destroy");
}

TEST_CASE("format_status", "[xen]") {
  DomainStatus s{"web1", DomainState::running, 3, 512, 1, 312s};
  CHECK(format_status(s) == "web1: running, domid 3, 512 MiB, 1 vCPU, up 0:05:12");
  s.vcpus = 2;
  s.uptime = std::chrono::seconds(2 * 86400 + 3 * 3600 + 4 * 60 + 5);
  CHECK(format_status(s) == "web1: running, domid 3, 512 MiB, 2 vCPUs, up 2d 3:04:05");
  s.uptime = 0s;
  CHECK(format_status(s) == "web1: running, domid 3, 512 MiB, 2 vCPUs, up 0:00:00");

  DomainStatus off{"web1", DomainState::shut_off, std::nullopt, 512, 1, 0s};
  CHECK(format_status(off) == "web1: shut off, 512 MiB, 1 vCPU");
  off.state = DomainState::crashed;
  CHECK(format_status(off) == "web1: crashed, 512 MiB, 1 vCPU");
  off.state = DomainState::shutting_down;
  off.domid = 3;
  CHECK(format_status(off) == "web1: shutting down, domid 3, 512 MiB, 1 vCPU");
}

TEST_CASE("sim: unknown domain is not_found", "[xen][sim]") {
  Sim sim(command({"/bin/cat"}));
  auto st = sim.hv->status("nope");
  REQUIRE_FALSE(st);
  CHECK(st.error().code == Errc::not_found);
  CHECK(st.error().message == "no such domain 'nope'");
  auto r = sim.hv->act("nope", Lifecycle::start);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::not_found);
  auto c = sim.hv->open_console("nope");
  REQUIRE_FALSE(c);
  CHECK(c.error().code == Errc::not_found);
}

TEST_CASE("sim: a shut off domain refuses stop actions and the console", "[xen][sim]") {
  Sim sim(command({"/bin/cat"}), {{"web2", 256, 2}, {"web1", 512, 1}});
  CHECK(sim.hv->domains() == std::vector<std::string>{"web1", "web2"});
  auto s = sim.status("web2");
  CHECK(s.state == DomainState::shut_off);
  CHECK_FALSE(s.domid);
  CHECK(s.memory_mib == 256);
  CHECK(s.vcpus == 2);
  CHECK(format_status(s) == "web2: shut off, 256 MiB, 2 vCPUs");

  for (auto action : {Lifecycle::shutdown, Lifecycle::reboot, Lifecycle::destroy}) {
    auto r = sim.hv->act("web1", action);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::wrong_state);
    CHECK(r.error().message == "web1 is not running");
  }
  auto c = sim.hv->open_console("web1");
  REQUIRE_FALSE(c);
  CHECK(c.error().code == Errc::wrong_state);
  CHECK(c.error().message == "web1 is not running (shut off)");
  CHECK(sim.changes.empty());
}

TEST_CASE("sim: a domain migrated away leaves at once, shut off, and can start again", "[xen][sim]") {
  SimOptions options = command({"/bin/cat"});
  options.autostart = true;
  Sim sim(std::move(options));
  REQUIRE(sim.status().state == DomainState::running);
  auto before = sim.changes_for();
  REQUIRE(sim.hv->migrate_out("web1"));
  auto s = sim.status();
  CHECK(s.state == DomainState::shut_off);
  CHECK_FALSE(s.domid);
  CHECK(sim.changes_for() == before + 1);
  CHECK(sim.logged("web1 (domid 1) migrated away"));
  auto again = sim.hv->migrate_out("web1");
  REQUIRE_FALSE(again);
  CHECK(again.error().code == Errc::wrong_state);
  CHECK(again.error().message == "web1 is not running (shut off)");
  CHECK(sim.hv->act("web1", Lifecycle::start));  // migrated back in
  CHECK(sim.status().state == DomainState::running);
}

TEST_CASE("sim: a domain listed twice is refused", "[xen][sim]") {
  EventLoop loop;
  CHECK_THROWS_AS(SimHypervisor(loop, {{"web1"}, {"web1"}}, SimOptions{}), std::invalid_argument);
}

TEST_CASE("sim: custom guest /bin/cat echoes through a raw pty", "[xen][sim]") {
  Sim sim(command({"/bin/cat"}));
  REQUIRE(sim.hv->act("web1", Lifecycle::start));
  auto s = sim.status();
  CHECK(s.state == DomainState::running);
  CHECK(s.domid == 1u);
  CHECK(sim.changes_for() == 1);

  auto con = sim.console();
  con->write("hello\n");
  REQUIRE(con->wait_for("hello\n"));
  // Raw mode: no echo by the line discipline and no LF -> CRLF.
  CHECK(con->text() == "hello\n");

  auto again = sim.hv->act("web1", Lifecycle::start);
  REQUIRE_FALSE(again);
  CHECK(again.error().code == Errc::wrong_state);
  CHECK(again.error().message == "web1 is already running");

  REQUIRE(sim.hv->act("web1", Lifecycle::destroy));
  REQUIRE(sim.wait_state(DomainState::shut_off));
  CHECK_FALSE(sim.status().domid);
  CHECK(sim.changes_for() == 2);
  CHECK(con->wait_closed());
}

TEST_CASE("sim: the guest runs in its own session on an 80x24 controlling pty", "[xen][sim]") {
  Sim sim(command({"/bin/sh", "-c",
                   "echo \"$XCG_DOMAIN $XCG_DOMID $(stty size)\"; "
                   "if : </dev/tty; then echo ctty; fi; "
                   "read pid comm state ppid pgrp sid rest </proc/$$/stat; "
                   "[ $sid -eq $$ ] && [ $pgrp -eq $$ ] && echo leader; "
                   "exec cat"}));
  REQUIRE(sim.hv->act("web1", Lifecycle::start));
  auto con = sim.console();
  REQUIRE(con->wait_for("leader\n"));
  CHECK(con->text() == "web1 1 24 80\nctty\nleader\n");
}

TEST_CASE("sim: the guest inherits no stray descriptors", "[xen][sim]") {
  UniqueFd stray(::open("/dev/null", O_RDONLY));  // deliberately without O_CLOEXEC
  REQUIRE(stray);
  Sim sim(command({"/bin/ls", "-1", "/proc/self/fd"}));
  REQUIRE(sim.hv->act("web1", Lifecycle::start));
  auto con = sim.console();                        // the guest is not reaped before the loop runs
  REQUIRE(sim.wait_state(DomainState::shut_off));  // exit status 0 counts as a power-off
  REQUIRE(con->wait_closed());
  CHECK(con->text() == "0\n1\n2\n3\n");  // 3 is ls's own directory handle
}

TEST_CASE("sim: a guest that fails is crashed", "[xen][sim]") {
  SECTION("non-zero exit") {
    Sim sim(command({"/bin/false"}));
    REQUIRE(sim.hv->act("web1", Lifecycle::start));
    REQUIRE(sim.wait_state(DomainState::crashed));
    CHECK(sim.changes_for() == 2);
    CHECK(format_status(sim.status()) == "web1: crashed, 512 MiB, 1 vCPU");
    auto c = sim.hv->open_console("web1");
    REQUIRE_FALSE(c);
    CHECK(c.error().message == "web1 is not running (crashed)");
    // Destroying a crashed domain clears it away; it can start again.
    REQUIRE(sim.hv->act("web1", Lifecycle::destroy));
    CHECK(sim.status().state == DomainState::shut_off);
    REQUIRE(sim.hv->act("web1", Lifecycle::start));
    CHECK(sim.status().domid == 2u);
  }
  SECTION("exec failure shows on the console") {
    Sim sim(command({"/nonexistent/guest"}));
    REQUIRE(sim.hv->act("web1", Lifecycle::start));
    auto con = sim.console();
    REQUIRE(sim.wait_state(DomainState::crashed));
    REQUIRE(con->wait_closed());
    CHECK(con->text().find("cannot start guest: /nonexistent/guest: No such file") != std::string::npos);
  }
}

TEST_CASE("sim: a guest that ignores SIGTERM is killed after the grace period", "[xen][sim]") {
  SimOptions o =
      command({"/bin/sh", "-c", "trap '' TERM; sleep 1000 & echo \"child $!\"; while :; do sleep 1; done"});
  o.shutdown_grace = 200ms;
  Sim sim(o);
  REQUIRE(sim.hv->act("web1", Lifecycle::start));
  auto con = sim.console();
  REQUIRE(con->wait_for("\n"));
  pid_t child = std::stoi(con->text().substr(con->text().find("child ") + 6));

  auto asked = EventLoop::Clock::now();
  REQUIRE(sim.hv->act("web1", Lifecycle::shutdown));
  CHECK(sim.status().state == DomainState::shutting_down);
  CHECK(sim.status().domid == 1u);
  REQUIRE(sim.wait_state(DomainState::shut_off));
  CHECK(EventLoop::Clock::now() - asked >= 200ms);
  CHECK(sim.logged("killing it"));
  // The whole process group went, not just its leader.
  CHECK(sim.loop.run_until([&] { return process_dead(child); }, kDeadline));
}

TEST_CASE("sim: the destructor kills and reaps the guests", "[xen][sim]") {
  pid_t pid = 0;
  {
    Sim sim(command({"/bin/sh", "-c", "trap '' TERM; echo \"pid $$\"; exec cat"}));
    REQUIRE(sim.hv->act("web1", Lifecycle::start));
    auto con = sim.console();
    REQUIRE(con->wait_for("\n"));
    pid = std::stoi(con->text().substr(4));
    CHECK_FALSE(process_dead(pid));
    con.reset();
  }
  CHECK(::kill(pid, 0) < 0);  // reaped, not merely dead
  CHECK(errno == ESRCH);
}

// ---- domains added and removed by a config reload ----

TEST_CASE("sim: a domain added later starts per autostart, like those from the start", "[xen][sim]") {
  SimOptions o = command({"/bin/sh", "-c", "echo \"$XCG_DOMAIN up\"; exec cat"});
  SECTION("autostart") {
    o.autostart = true;
    Sim sim(o);
    REQUIRE(sim.status("web1").state == DomainState::running);
    REQUIRE(sim.hv->add_domain({"web2", 256, 2}));
    CHECK(sim.hv->domains() == std::vector<std::string>{"web1", "web2"});
    auto s = sim.status("web2");
    CHECK(s.state == DomainState::running);
    CHECK(s.domid == 2u);
    CHECK(s.memory_mib == 256);
    CHECK(s.vcpus == 2);
    CHECK(sim.changes_for("web2") == 1);  // the listener hears of the start, so a hub can attach
    auto con = sim.console("web2");
    REQUIRE(con->wait_for("web2 up\n"));
    con->write("typed\n");
    REQUIRE(con->wait_for("typed\n"));
  }
  SECTION("no autostart") {
    Sim sim(o);
    REQUIRE(sim.hv->add_domain({"web2", 256, 2}));
    CHECK(sim.status("web2").state == DomainState::shut_off);
    CHECK(sim.changes.empty());
    REQUIRE(sim.hv->act("web2", Lifecycle::start));
    CHECK(sim.status("web2").state == DomainState::running);
  }
  SECTION("a name already there or none at all is refused") {
    Sim sim(o);
    auto twice = sim.hv->add_domain({"web1"});
    REQUIRE_FALSE(twice);
    CHECK(twice.error().code == Errc::invalid_input);
    CHECK(sim.hv->add_domain({}).error().code == Errc::invalid_input);
    CHECK(sim.hv->domains() == std::vector<std::string>{"web1"});
  }
}

TEST_CASE("sim: a removed domain's guest is killed and reaped at once; it can come back", "[xen][sim]") {
  SimOptions o = command({"/bin/sh", "-c", "trap '' TERM; echo \"pid $$\"; exec cat"});
  o.autostart = true;
  o.shutdown_grace = 200ms;
  Sim sim(o, {{"web1", 512, 1}, {"web2", 512, 1}});
  auto con = sim.console("web2");
  REQUIRE(con->wait_for("\n"));
  pid_t pid = std::stoi(con->text().substr(4));
  uint32_t old_domid = *sim.status("web2").domid;

  SECTION("running") {}
  SECTION("while shutting down: the pending kill goes with it") {
    REQUIRE(sim.hv->act("web2", Lifecycle::shutdown));
    REQUIRE(sim.status("web2").state == DomainState::shutting_down);
  }
  REQUIRE(sim.hv->remove_domain("web2"));
  CHECK(::kill(pid, 0) < 0);  // reaped, not merely dead
  CHECK(errno == ESRCH);
  CHECK(sim.hv->domains() == std::vector<std::string>{"web1"});
  CHECK(sim.hv->status("web2").error().code == Errc::not_found);
  CHECK(sim.hv->remove_domain("web2").error().code == Errc::not_found);
  CHECK(con->wait_closed());
  // Past the shutdown grace: a timer left behind would fire on a domain that is gone.
  sim.loop.run_until([] { return false; }, 400ms);
  CHECK(sim.changes_for("web2") == 0);
  CHECK(sim.status("web1").state == DomainState::running);

  REQUIRE(sim.hv->add_domain({"web2", 512, 1}));
  auto s = sim.status("web2");
  CHECK(s.state == DomainState::running);
  CHECK(*s.domid > old_domid);
}

// ---- with the built-in fake guest ----

TEST_CASE("fake guest: autostart, login and a shell", "[xen][sim][guest]") {
  auto o = fake_guest(true);
  if (!o) return;
  Sim sim(*o, {{"web1", 512, 1}, {"db1", 1024, 2}});
  auto web = sim.status("web1"), db = sim.status("db1");
  CHECK(web.state == DomainState::running);
  CHECK(db.state == DomainState::running);
  REQUIRE(web.domid);
  REQUIRE(db.domid);
  CHECK(*web.domid != *db.domid);
  CHECK(format_status(web).starts_with("web1: running, domid " + std::to_string(*web.domid) +
                                       ", 512 MiB, 1 vCPU, up 0:00:0"));

  auto con = sim.console("web1");
  REQUIRE(con->wait_for("web1 login: "));
  CHECK(con->text().find("Booting fake guest web1 (domid " + std::to_string(*web.domid) + ")") !=
        std::string::npos);
  CHECK(con->text().find("Debian GNU/Linux 12 web1 hvc0") != std::string::npos);

  size_t mark = con->size();
  con->write("root\r");
  REQUIRE(con->wait_for("web1:~# ", mark));
  CHECK(con->text().substr(mark) == "root\r\nLinux web1 6.1.0-xcg-sim\r\nweb1:~# ");

  mark = con->size();
  con->write("echo hi\r");
  REQUIRE(con->wait_for("web1:~# ", mark));
  CHECK(con->text().substr(mark) == "echo hi\r\nhi\r\nweb1:~# ");

  SECTION("line editing and control bytes") {
    mark = con->size();
    con->write("ecx\x7fho a\x0f\r");
    REQUIRE(con->wait_for("web1:~# ", mark));
    CHECK(con->text().substr(mark) == "ecx\b \bho a^O\r\na^O\r\nweb1:~# ");
    mark = con->size();
    con->write("abc\x03");
    REQUIRE(con->wait_for("web1:~# ", mark));
    CHECK(con->text().substr(mark) == "abc^C\r\nweb1:~# ");
    mark = con->size();
    con->write("foo\r\n");  // CR LF ends one line, not two
    REQUIRE(con->wait_for("web1:~# ", mark));
    CHECK(con->text().substr(mark) == "foo\r\n-sh: foo: command not found\r\nweb1:~# ");
  }
  SECTION("seq writes every line") {
    mark = con->size();
    con->write("seq 200000\r");
    REQUIRE(con->wait_for("200000\r\nweb1:~# ", mark));
    std::string out = con->text().substr(mark);
    CHECK(out.starts_with("seq 200000\r\n1\r\n2\r\n3\r\n"));
    CHECK(std::count(out.begin(), out.end(), '\n') == 200001);
  }
  SECTION("Ctrl-C stops a long seq") {
    mark = con->size();
    con->write("seq 10000000\r");
    REQUIRE(con->wait_for("\r\n1000\r\n", mark));
    con->write("\x03");
    REQUIRE(con->wait_for("^C\r\nweb1:~# ", mark));
    CHECK(con->text().find("\r\n10000000\r\n", mark) == std::string::npos);
    mark = con->size();
    con->write("echo after\r");
    REQUIRE(con->wait_for("after\r\nweb1:~# ", mark));
  }
  SECTION("exit returns to the login prompt") {
    mark = con->size();
    con->write("exit\r");
    REQUIRE(con->wait_for("web1 login: ", mark));
    CHECK(con->text().substr(mark).starts_with("exit\r\nlogout\r\n"));
  }
}

TEST_CASE("fake guest: shutdown, start again", "[xen][sim][guest]") {
  auto o = fake_guest();
  if (!o) return;
  o->shutdown_grace = 30s;  // the guest must go well before SIGKILL would
  Sim sim(*o);
  REQUIRE(sim.hv->act("web1", Lifecycle::start));
  uint32_t first = *sim.status().domid;
  CHECK(sim.changes_for() == 1);
  auto con = sim.console();
  REQUIRE(con->wait_for("web1 login: "));

  auto asked = EventLoop::Clock::now();
  REQUIRE(sim.hv->act("web1", Lifecycle::shutdown));
  auto s = sim.status();
  CHECK(s.state == DomainState::shutting_down);
  CHECK(format_status(s) == "web1: shutting down, domid " + std::to_string(first) + ", 512 MiB, 1 vCPU");
  REQUIRE(sim.wait_state(DomainState::shut_off));
  CHECK(EventLoop::Clock::now() - asked < 10s);
  CHECK_FALSE(sim.logged("killing it"));
  CHECK(sim.changes_for() == 2);
  REQUIRE(con->wait_closed());
  CHECK(con->text().find("[  OK  ] Reached target Power-Off.\r\nreboot: Power down\r\n") !=
        std::string::npos);

  auto r = sim.hv->act("web1", Lifecycle::shutdown);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::wrong_state);

  REQUIRE(sim.hv->act("web1", Lifecycle::start));
  CHECK(sim.status().state == DomainState::running);
  CHECK(*sim.status().domid > first);
  CHECK(sim.changes_for() == 3);
}

TEST_CASE("fake guest: shutdown does not wait for a console nobody reads", "[xen][sim][guest]") {
  auto o = fake_guest(true);
  if (!o) return;
  o->shutdown_grace = 30s;
  Sim sim(*o);
  auto fd = sim.hv->open_console("web1");
  REQUIRE(fd);
  std::string_view input = "root\rseq 10000000\r";
  REQUIRE(::write(fd->get(), input.data(), input.size()) == static_cast<ssize_t>(input.size()));
  // Wait until seq has filled the pty, far beyond the banner.
  int unread = 0;
  REQUIRE(sim.loop.run_until([&] { return ::ioctl(fd->get(), FIONREAD, &unread) == 0 && unread > 2000; },
                             kDeadline));

  auto asked = EventLoop::Clock::now();
  REQUIRE(sim.hv->act("web1", Lifecycle::shutdown));
  REQUIRE(sim.wait_state(DomainState::shut_off));
  CHECK(EventLoop::Clock::now() - asked < 10s);
  CHECK_FALSE(sim.logged("killing it"));
}

TEST_CASE("fake guest: reboot comes back with a new domid", "[xen][sim][guest]") {
  auto o = fake_guest(true);
  if (!o) return;
  Sim sim(*o);
  uint32_t first = *sim.status().domid;
  auto old_con = sim.console();
  REQUIRE(old_con->wait_for("web1 login: "));

  REQUIRE(sim.hv->act("web1", Lifecycle::reboot));
  CHECK(sim.status().state == DomainState::shutting_down);
  REQUIRE(sim.loop.run_until(
      [&] {
        auto s = sim.status();
        return s.state == DomainState::running && s.domid && *s.domid > first;
      },
      kDeadline));
  uint32_t second = *sim.status().domid;
  CHECK(sim.changes_for() >= 1);
  CHECK(old_con->wait_closed());
  CHECK(old_con->text().find("reboot: Power down") != std::string::npos);

  auto con = sim.console();
  REQUIRE(con->wait_for("web1 login: "));
  CHECK(con->text().find("Booting fake guest web1 (domid " + std::to_string(second) + ")") !=
        std::string::npos);
}

TEST_CASE("fake guest: destroy, panic and poweroff", "[xen][sim][guest]") {
  auto o = fake_guest(true);
  if (!o) return;
  Sim sim(*o);
  auto con = sim.console();
  REQUIRE(con->wait_for("web1 login: "));

  SECTION("destroy kills it without a shutdown") {
    REQUIRE(sim.hv->act("web1", Lifecycle::destroy));
    REQUIRE(sim.wait_state(DomainState::shut_off));
    REQUIRE(con->wait_closed());
    CHECK(con->text().find("Power") == std::string::npos);
    CHECK(sim.changes_for() == 1);
  }
  SECTION("panic crashes it") {
    con->write("root\rpanic\r");
    REQUIRE(sim.wait_state(DomainState::crashed));
    REQUIRE(con->wait_closed());
    CHECK(con->text().find("panic\r\nKernel panic - not syncing: requested\r\n") != std::string::npos);
    CHECK(sim.changes_for() == 1);
  }
  SECTION("poweroff shuts it off") {
    con->write("root\rpoweroff\r");
    REQUIRE(sim.wait_state(DomainState::shut_off));
    REQUIRE(con->wait_closed());
    CHECK(con->text().find("poweroff\r\n") != std::string::npos);
    CHECK(con->text().find("reboot: Power down\r\n") != std::string::npos);
  }
}

namespace {

// A toolstack stand-in that records its argv in `dir`/argv and then runs `body`.
std::string fake_toolstack(const std::string& dir, const std::string& body) {
  std::string path = dir + "/xl";
  std::ofstream(path) << "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> " << dir << "/argv\n"
                      << body << "\n";
  REQUIRE(::chmod(path.c_str(), 0700) == 0);
  return path;
}

std::string slurp_and_remove(const std::string& path) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ::unlink(path.c_str());
  return text;
}

Result<void> act_and_wait(Sim& sim, Lifecycle action) {
  std::optional<Result<void>> result;
  sim.hv->act_async("web1", action, [&](Result<void> r) { result = std::move(r); });
  REQUIRE(sim.loop.run_until([&] { return result.has_value(); }, kDeadline));
  return std::move(*result);
}

}  // namespace

TEST_CASE("sim: with a toolstack, actions run it as Xen runs xl and act only on success", "[xen][sim]") {
  char dir_template[] = "/tmp/xcg-sim-toolstack-XXXXXX";
  REQUIRE(::mkdtemp(dir_template) != nullptr);
  std::string dir = dir_template;
  SimOptions options = command({"/bin/cat"});
  options.toolstack =
      fake_toolstack(dir, "[ -e " + dir +
                              "/fail ] || exit 0\n"
                              "echo 'libxl: error: libxl_create.c:1:f: out of memory' >&2; exit 1");
  Sim sim(options, {{"web1", 512, 1, dir + "/web1.cfg"}});

  std::optional<Result<void>> started;
  sim.hv->act_async("web1", Lifecycle::start, [&](Result<void> r) { started = std::move(r); });
  CHECK_FALSE(started);  // not before the toolstack has run
  REQUIRE(sim.loop.run_until([&] { return started.has_value(); }, kDeadline));
  REQUIRE(*started);
  CHECK(slurp_and_remove(dir + "/argv") == "create\n" + dir + "/web1.cfg\n");
  CHECK(sim.status().state == DomainState::running);
  uint32_t domid = *sim.status().domid;

  // Refused as Xen refuses, without a toolstack run.
  CHECK(act_and_wait(sim, Lifecycle::start).error().message == "web1 is already running");
  CHECK(slurp_and_remove(dir + "/argv").empty());

  std::ofstream(dir + "/fail") << "";
  auto failed = act_and_wait(sim, Lifecycle::shutdown);
  REQUIRE_FALSE(failed);
  CHECK(failed.error().message == "cannot shutdown web1: out of memory");
  CHECK(sim.status().state == DomainState::running);  // nothing happened
  std::optional<Result<void>> nmi;
  sim.hv->send_sysrq("web1", 0, [&](Result<void> r) { nmi = std::move(r); });
  CHECK_FALSE(nmi);
  REQUIRE(sim.loop.run_until([&] { return nmi.has_value(); }, kDeadline));
  CHECK(nmi->error().message == "cannot send an NMI to web1: out of memory");
  CHECK(slurp_and_remove(dir + "/argv") == fmt::format("shutdown\n-F\n{}\ntrigger\n{}\nnmi\n", domid, domid));

  ::unlink((dir + "/fail").c_str());
  REQUIRE(act_and_wait(sim, Lifecycle::destroy));
  CHECK(slurp_and_remove(dir + "/argv") == fmt::format("destroy\n{}\n", domid));
  CHECK(sim.wait_state(DomainState::shut_off));
  ::unlink(options.toolstack.c_str());
  ::rmdir(dir.c_str());
}

TEST_CASE("sim: a toolstack that cannot be executed stops the start", "[xen][sim]") {
  EventLoop loop;
  SimOptions options;
  options.toolstack = "/nonexistent/xl";
  CHECK_THROWS_AS(SimHypervisor(loop, {{"web1"}}, options), std::runtime_error);
}

}  // namespace xcg::xen

namespace xcg::xen {
namespace {

// A console_dir with web1 a link to a pty the test holds (its master plays the guest).
struct ConsoleDir {
  ConsoleDir() { std::filesystem::create_symlink(pty.path, dir / "web1"); }
  SimOptions options() const {
    SimOptions o = command({"/bin/false"});  // would crash the domain if it were ever run
    o.autostart = true;
    o.console_dir = dir.path();
    return o;
  }
  testing::TempDir dir;
  testing::Pty pty;
};

std::string refusal(const ConsoleDir& c, std::string_view what) {
  return fmt::format(
      "cannot {} web1: its console is a tty in {} (sim.console_dir), and the gateway serves "
      "only that console",
      what, c.dir.path());
}

}  // namespace

TEST_CASE("sim: a console_dir domain is the tty there, opened raw, bytes both ways", "[xen][sim]") {
  ConsoleDir c;
  Sim sim(c.options());
  auto s = sim.status();
  CHECK(s.state == DomainState::running);
  CHECK(s.domid == 1u);
  CHECK(sim.changes.empty());
  auto console = sim.console();
  // The guest's output, as a kernel writes it to its console.
  std::string out = "boot \x01\x7f\r\n";
  REQUIRE(::write(c.pty.master.get(), out.data(), out.size()) == static_cast<ssize_t>(out.size()));
  CHECK(console->wait_for(out));
  // Raw, as open_raw_tty leaves it: "\n" is not made "\r\n", "\r" not made "\n", no echo.
  console->write("ls\n");
  CHECK(testing::read_until(c.pty.master.get(), "ls\n", kDeadline) == "ls\n");
  termios tio{};
  REQUIRE(::tcgetattr(c.pty.slave.get(), &tio) == 0);
  CHECK((tio.c_lflag & (ICANON | ECHO)) == 0);
  CHECK((tio.c_oflag & OPOST) == 0);
}

TEST_CASE("sim: a console_dir domain refuses lifecycle actions, SysRq, NMIs and migration", "[xen][sim]") {
  ConsoleDir c;
  Sim sim(c.options());
  for (auto action : {Lifecycle::start, Lifecycle::shutdown, Lifecycle::reboot, Lifecycle::destroy}) {
    std::optional<Result<void>> done;
    sim.hv->act_async("web1", action, [&](Result<void> r) { done = std::move(r); });
    REQUIRE(done);
    REQUIRE_FALSE(*done);
    CHECK(done->error().code == Errc::unavailable);
    CHECK(done->error().message == refusal(c, lifecycle_name(action)));
  }
  for (char key : {'s', '\0'}) {
    std::optional<Result<void>> done;
    sim.hv->send_sysrq("web1", key, [&](Result<void> r) { done = std::move(r); });
    REQUIRE(done);
    REQUIRE_FALSE(*done);
    CHECK(done->error().message == refusal(c, key ? "send SysRq to" : "send an NMI to"));
  }
  auto migrated = sim.hv->migrate_out("web1");
  REQUIRE_FALSE(migrated);
  CHECK(migrated.error().message == refusal(c, "migrate"));
  CHECK(sim.status().state == DomainState::running);
  CHECK(sim.changes.empty());
}

TEST_CASE("sim: a console_dir tty that is gone, or no pty slave, is not opened", "[xen][sim]") {
  ConsoleDir c;
  Sim sim(c.options(), {{"web1"}, {"db1"}});
  REQUIRE(sim.hv->add_domain({"web2"}));
  CHECK(sim.status("web2").state == DomainState::running);
  auto gone = sim.hv->open_console("web2");
  REQUIRE_FALSE(gone);
  CHECK(gone.error().code == Errc::unavailable);
  CHECK(gone.error().message ==
        fmt::format("the console of web2: open {}/web2: No such file or directory", c.dir.path()));
  testing::write_file(c.dir / "db1", "not a tty\n", std::filesystem::perms::owner_read);
  auto file = sim.hv->open_console("db1");
  REQUIRE_FALSE(file);
  CHECK(file.error().message == fmt::format("the console of db1: {}/db1 is not a pty slave", c.dir.path()));
  CHECK(sim.hv->open_console("web1"));
}

}  // namespace xcg::xen
