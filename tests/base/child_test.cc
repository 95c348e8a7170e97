// The child side of fork-and-exec that every spawner shares: descriptors laid out, the rest
// closed, a failure said on descriptor 2.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <string>

#include "base/child.h"

using namespace xcg;

namespace {

struct Pipe {
  UniqueFd read, write;
  Pipe() {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    read.reset(fds[0]);
    write.reset(fds[1]);
  }
  std::string drain() {
    write.reset();
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(read.get(), buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    return out;
  }
};

int exec_spec(void* spec) noexcept { exec_child(*static_cast<const ExecSpec*>(spec)); }

// Runs /bin/sh -c `script` with stdout and stderr on the two pipes, forked or spawned (sharing
// our memory until the exec); returns its exit status.
int run(const char* path, const char* script, Pipe& out, Pipe& err, const char* prefix,
        bool spawned = false) {
  UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  UniqueFd stray(::open("/dev/null", O_RDONLY));  // inheritable: must be closed all the same
  char sh[] = "sh", c[] = "-c";
  std::string s = script;
  char* argv[] = {sh, c, s.data(), nullptr};
  char* envp[] = {nullptr};
  const int fds[] = {null.get(), out.write.get(), err.write.get()};
  ExecSpec spec{
      .path = path, .argv = argv, .envp = envp, .fds = fds, .fd_count = 3, .failure_prefix = prefix};
  auto child = spawned ? spawn_child(exec_spec, &spec) : start_child([&] { exec_child(spec); });
  REQUIRE(child);
  auto done = wait_child(child->pidfd.get(), true);
  REQUIRE(done);
  return done->si_status;
}

}  // namespace

TEST_CASE("the child gets its descriptors where asked, and no other", "[child]") {
  Pipe out, err;
  int status = run("/bin/sh", "echo out; echo err >&2; ls /proc/self/fd | tr '\\n' ' '", out, err, "x: ");
  CHECK(status == 0);
  // 0, 1, 2, and the descriptor ls reads the directory with.
  CHECK(out.drain() == "out\n0 1 2 3 ");
  CHECK(err.drain() == "err\n");
}

TEST_CASE("a failed exec is said on descriptor 2 with the prefix, and only with one", "[child]") {
  Pipe out, err;
  CHECK(run("/nonexistent/prog", "", out, err, "xcg: cannot execute ") == 127);
  CHECK(err.drain() == "xcg: cannot execute /nonexistent/prog: No such file or directory\n");
  Pipe out2, err2;
  CHECK(run("/nonexistent/prog", "", out2, err2, nullptr) == 127);
  CHECK(err2.drain().empty());
}

TEST_CASE("a spawned child gets the same layout and failure report as a forked one", "[child]") {
  Pipe out, err;
  int status =
      run("/bin/sh", "echo out; echo err >&2; ls /proc/self/fd | tr '\\n' ' '", out, err, "x: ", true);
  CHECK(status == 0);
  CHECK(out.drain() == "out\n0 1 2 3 ");
  CHECK(err.drain() == "err\n");
  Pipe out2, err2;
  CHECK(run("/nonexistent/prog", "", out2, err2, "xcg: cannot execute ", true) == 127);
  CHECK(err2.drain() == "xcg: cannot execute /nonexistent/prog: No such file or directory\n");
}
