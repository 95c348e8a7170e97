// `xcg serve` with `hypervisor: xen` on a machine without Xen: one line saying what is missing,
// and a non-zero exit. Needs the xcg binary (XCG_BINARY, which meson's test() sets).
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "base/pidfd.h"
#include "tests/xen/xen_test_support.h"

namespace xcg::xen::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct Ran {
  int exit_status = -1;
  std::string output;  // stdout and stderr
};

// Runs `argv` with exactly `env`, collecting its output; kills it after `deadline`.
Ran run(std::vector<std::string> argv, std::vector<std::string> env, std::chrono::milliseconds deadline) {
  int out[2];
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  UniqueFd read_end(out[0]), write_end(out[1]);
  std::vector<char*> args, envp;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(write_end.get(), 1);
    ::dup2(write_end.get(), 2);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  write_end.reset();
  UniqueFd pidfd(open_pidfd(pid));
  REQUIRE(pidfd);
  Ran ran;
  auto end = std::chrono::steady_clock::now() + deadline;
  bool open = true;
  while (open) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      FAIL_CHECK("xcg serve did not exit in time");
      break;
    }
    pollfd p{read_end.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n > 0) ran.output.append(buf, static_cast<size_t>(n));
    else if (n == 0 || errno != EINTR) open = false;
  }
  siginfo_t info{};
  REQUIRE(::waitid(P_PIDFD, static_cast<id_t>(pidfd.get()), &info, WEXITED) == 0);
  ran.exit_status = info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
  return ran;
}

TEST_CASE("xcg serve with hypervisor xen and no Xen exits 1 with one line saying what is missing") {
  const char* binary = std::getenv("XCG_BINARY");
  if (!binary) {
    WARN("skipped: XCG_BINARY is not set (run the tests through meson)");
    return;
  }
  if (fs::exists("/dev/xen/privcmd")) {
    WARN("skipped: this machine has /dev/xen/privcmd");
    return;
  }
  TempDir dir;
  std::string config = dir / "xcg.yaml";
  write_file(config,
             "listen: [\"127.0.0.1:0\"]\n"
             "host_keys: [" +
                 dir / "host_key" +
                 "]\n"
                 "hypervisor: xen\n"
                 "run_as: nobody\n"
                 "chroot_dir: " +
                 dir / "empty" +
                 "\n"
                 "xen:\n"
                 "  lock_dir: " +
                 dir.path() +
                 "\n"
                 "domains:\n"
                 "  web1:\n",
             fs::perms::owner_read | fs::perms::owner_write);
  auto ran = run({binary, "serve", "--config", config},
                 {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "XENSTORED_PATH=" + dir / "no-xenstored"}, 20s);
  INFO(ran.output);
  CHECK(ran.exit_status == 1);
  size_t at = ran.output.find("hypervisor xen: no /dev/xen/privcmd");
  REQUIRE(at != std::string::npos);
  std::string line = ran.output.substr(at, ran.output.find('\n', at) - at);
  CHECK_THAT(line, Catch::Contains("cannot reach xenstored at " + dir / "no-xenstored"));
  CHECK_THAT(line, Catch::Contains("is xenstored running?"));
}

}  // namespace
}  // namespace xcg::xen::testing
