// Toolstack: how `xl` is run, with shell scripts standing in for it.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/event_loop.h"
#include "tests/xen/xen_test_support.h"
#include "xen/toolstack.h"

namespace xcg::xen::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr auto kExecutable = fs::perms::owner_all;

// A fake xl: records its argv, environment and descriptors in `dir`, then runs `body`.
std::string fake_xl(const TempDir& dir, const std::string& body) {
  std::string path = dir / "xl";
  write_file(path,
             "#!/bin/sh\n"
             "for a in \"$@\"; do printf '%s\\n' \"$a\"; done > " +
                 dir / "argv" +
                 "\n"
                 "env > " +
                 dir / "env" +
                 "\n"
                 "fds=$(readlink /proc/$$/fd/0 /proc/$$/fd/1); printf '%s\\n' \"$fds\" > " +
                 dir / "fds" +
                 "\n"
                 "echo $$ > " +
                 dir / "pid" + "\n" + body + "\n",
             kExecutable);
  return path;
}

// Runs the toolstack and the loop until it is done.
Result<void> run(EventLoop& loop, Toolstack& xl, const std::vector<std::string>& args) {
  std::optional<Result<void>> result;
  xl.run_async(args, [&](Result<void> r) { result = std::move(r); });
  REQUIRE(loop.run_until([&] { return result.has_value(); }, 15s));
  return std::move(*result);
}

// While it lives, no descriptor can be opened: the limit is the lowest free descriptor number,
// so every number below it is taken (those above stay usable).
class NoFreeDescriptors {
 public:
  NoFreeDescriptors() {
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved_) == 0);
    int lowest = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(lowest >= 0);
    ::close(lowest);
    rlimit tight = saved_;
    tight.rlim_cur = static_cast<rlim_t>(lowest);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);
  }
  ~NoFreeDescriptors() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
  NoFreeDescriptors(const NoFreeDescriptors&) = delete;
  NoFreeDescriptors& operator=(const NoFreeDescriptors&) = delete;

 private:
  rlimit saved_{};
};

bool process_gone(const std::string& pid_text) {
  std::string pid = pid_text.substr(0, pid_text.find('\n'));
  REQUIRE_FALSE(pid.empty());
  return !fs::exists("/proc/" + pid);  // a zombie would still have its entry
}

TEST_CASE("the toolstack runs with an argv, only PATH, and /dev/null for stdin and stdout") {
  TempDir dir;
  ScopedEnv secret("XCG_TEST_SECRET", "do-not-pass-me");
  EventLoop loop;
  Toolstack xl(loop, fake_xl(dir, "exit 0"), 5s);
  // Nothing here may be interpreted by a shell.
  std::string nasty = "$(touch " + dir / "pwned" + "); `id` > x; *";
  REQUIRE(run(loop, xl, {"create", nasty}));
  CHECK(slurp(dir / "argv") == "create\n" + nasty + "\n");
  CHECK_FALSE(fs::exists(dir / "pwned"));
  std::string env = slurp(dir / "env");
  CHECK_THAT(env, Catch::Contains("PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"));
  CHECK_THAT(env, !Catch::Contains("XCG_TEST_SECRET"));
  CHECK_THAT(env, !Catch::Contains("HOME="));
  CHECK(slurp(dir / "fds") == "/dev/null\n/dev/null\n");
  CHECK(process_gone(slurp(dir / "pid")));
}

TEST_CASE("a failing toolstack gives its first libxl error as the reason") {
  TempDir dir;
  EventLoop loop;
  Toolstack xl(
      loop,
      fake_xl(
          dir,
          "echo 'Parsing config from /etc/xen/web1.cfg' >&2\n"
          "echo 'libxl: error: libxl_create.c:1234:do_domain_create: Domain 7:cannot make domain: -3' >&2\n"
          "echo 'libxl: error: libxl_domain.c:1500:libxl__destroy_domid: Domain 7:Non-existant domain' >&2\n"
          "exit 3"),
      5s);
  auto r = run(loop, xl, {"create", "/etc/xen/web1.cfg"});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::system);
  CHECK(r.error().message == "Domain 7:cannot make domain: -3");
}

TEST_CASE("a toolstack failing without a word still says how it ended") {
  TempDir dir;
  EventLoop loop;
  SECTION("exit status") {
    Toolstack xl(loop, fake_xl(dir, "exit 4"), 5s);
    auto r = run(loop, xl, {"destroy", "3"});
    REQUIRE_FALSE(r);
    CHECK(r.error().message == "xl destroy failed (exit status 4)");
  }
  SECTION("signal") {
    Toolstack xl(loop, fake_xl(dir, "kill -SEGV $$"), 5s);
    auto r = run(loop, xl, {"destroy", "3"});
    REQUIRE_FALSE(r);
    CHECK(r.error().message == "xl destroy was killed by SIGSEGV");
  }
}

TEST_CASE("a toolstack that can't be executed is unavailable, with the path and why") {
  TempDir dir;
  EventLoop loop;
  Toolstack xl(loop, dir / "missing-xl", 5s);
  auto r = run(loop, xl, {"list"});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::unavailable);
  CHECK(r.error().message == "cannot execute " + dir / "missing-xl" + ": No such file or directory");
}

TEST_CASE("a toolstack that hangs is killed at the timeout and reaped") {
  TempDir dir;
  EventLoop loop;
  Toolstack xl(loop, fake_xl(dir, "exec sleep 30"), 300ms);
  auto start = std::chrono::steady_clock::now();
  auto r = run(loop, xl, {"shutdown", "-F", "3"});
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::timeout);
  CHECK(r.error().message == "xl shutdown did not finish within 300 ms");
  CHECK(took >= 300ms);
  CHECK(took < 5s);
  CHECK(process_gone(slurp(dir / "pid")));
}

TEST_CASE("the toolstack is done when it exits, even if a daemon it left keeps stderr open") {
  TempDir dir;
  EventLoop loop;
  // What `xl create` does: a monitoring daemon outlives it (briefly holding the stderr pipe).
  Toolstack xl(loop, fake_xl(dir, "sleep 5 &\nexit 0"), 10s);
  auto start = std::chrono::steady_clock::now();
  REQUIRE(run(loop, xl, {"create", "/etc/xen/web1.cfg"}));
  CHECK(std::chrono::steady_clock::now() - start < 3s);
}

TEST_CASE("run_async returns at once and reports from the event loop") {
  TempDir dir;
  EventLoop loop;
  std::string go = dir / "go";
  Toolstack xl(loop,
               fake_xl(dir, "i=0; while [ ! -e " + go +
                                " ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done\n"
                                "echo 'domain is gone' >&2; exit 1"),
               10s);
  std::optional<Result<void>> result;
  xl.run_async({"destroy", "3"}, [&](Result<void> r) { result = std::move(r); });
  CHECK_FALSE(result);  // the fake xl is waiting for `go`
  CHECK(xl.running() == 1);
  write_file(go, "", fs::perms::owner_read);
  REQUIRE(loop.run_until([&] { return result.has_value(); }, 10s));
  REQUIRE_FALSE(*result);
  CHECK(result->error().message == "domain is gone");
  CHECK(xl.running() == 0);
  CHECK(process_gone(slurp(dir / "pid")));
}

TEST_CASE("run_async kills at the timeout too") {
  TempDir dir;
  EventLoop loop;
  Toolstack xl(loop, fake_xl(dir, "exec sleep 30"), 200ms);
  std::optional<Result<void>> result;
  xl.run_async({"reboot", "-F", "3"}, [&](Result<void> r) { result = std::move(r); });
  REQUIRE(loop.run_until([&] { return result.has_value(); }, 5s));
  REQUIRE_FALSE(*result);
  CHECK(result->error().code == Errc::timeout);
  CHECK(process_gone(slurp(dir / "pid")));
}

TEST_CASE("a run that cannot start is reported from the loop, and not once the toolstack is gone") {
  EventLoop loop;
  std::optional<Result<void>> result;
  auto xl = std::make_unique<Toolstack>(loop, "/bin/true", 5s);
  {
    NoFreeDescriptors none;
    xl->run_async({}, [&](Result<void> r) { result = std::move(r); });
  }
  CHECK_FALSE(result.has_value());  // not before run_async returns
  SECTION("while it lives") {
    loop.run_once(0ms);  // the report is due at once
    REQUIRE(result.has_value());
    CHECK_FALSE(*result);
  }
  SECTION("after it is destroyed") {
    xl.reset();  // its `done` refers to what owned the toolstack: it must not run now
    loop.run_once(0ms);
    CHECK_FALSE(result.has_value());
  }
}

TEST_CASE("summarize_stderr: one printable line worth showing") {
  CHECK(summarize_stderr("").empty());
  CHECK(summarize_stderr("Parsing config from /etc/xen/x.cfg\n").empty());
  CHECK(summarize_stderr("Parsing config from /etc/xen/x.cfg\n"
                         "Failed to read config file: /etc/xen/x.cfg: No such file or directory\n") ==
        "Failed to read config file: /etc/xen/x.cfg: No such file or directory");
  // Without libxl errors, the last line; blank lines and \r don't count.
  CHECK(summarize_stderr("warning: something\r\n\nDomain web1 does not exist.\r\n\n") ==
        "Domain web1 does not exist.");
  // A libxl error keeps its text when it has no source position.
  CHECK(summarize_stderr("libxl: error: out of memory\n") == "out of memory");
  CHECK(summarize_stderr("bell\a and \x1b[31mcolour\ttab") == "bell? and ?[31mcolour tab");
  std::string longest = summarize_stderr(std::string(500, 'x'));
  CHECK(longest == std::string(200, 'x') + "...");
}

}  // namespace
}  // namespace xcg::xen::testing
