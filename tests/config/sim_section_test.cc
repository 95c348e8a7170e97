// `sim.console_dir`: each domain's console must be a pty slave under the directory when the
// config is read, and every refusal names the path.
#include "config/sim_section.h"

#include <pty.h>
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "config/config.h"
#include "tests/config/samples.h"

namespace xcg::config {
namespace {

namespace fs = std::filesystem;
using Lines = std::vector<std::string>;

class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/xcg-sim-section.XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    path = name;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string path;
};

// A pty pair made here: its slave is a console as xenconsoled (or the bench's guests) make one.
struct Pty {
  Pty() {
    int m = -1, s = -1;
    char name[128] = {};
    REQUIRE(::openpty(&m, &s, name, nullptr, nullptr) == 0);
    master.reset(m);
    slave.reset(s);
    path = name;
  }
  UniqueFd master, slave;
  std::string path;
};

// Domains web1 (line 5) and db1 (line 6); `sim:` on line 7, console_dir on line 8.
std::string with_console_dir(const std::string& dir, const std::string& hypervisor = "sim") {
  return "listen: ['127.0.0.1:2222']\nhost_keys: [/etc/xcg/host_key]\nhypervisor: " + hypervisor +
         "\ndomains:\n  web1: {}\n  db1: {}\n"
         "sim:\n  console_dir: " +
         dir + "\n";
}

}  // namespace

TEST_CASE("console_dir: every domain's console is a pty slave there, or a link to one", "[config][sim]") {
  TempDir dir;
  Pty web1, db1;
  fs::create_symlink(web1.path, dir.path + "/web1");
  fs::create_symlink(db1.path, dir.path + "/db1");
  auto c = parse_config(with_console_dir(dir.path), "t.yaml");
  CHECK(c->sim.console_dir == dir.path);
  CHECK(parse_config(with_console_dir(dir.path + "/"), "t.yaml")->sim.console_dir == dir.path);
  auto none =
      parse_config("listen: ['127.0.0.1:2222']\nhost_keys: [/k]\nhypervisor: sim\ndomains: {}\n", "t.yaml");
  CHECK(none->sim.console_dir.empty());
}

TEST_CASE("console_dir: a missing directory, or one that is a file, is refused", "[config][sim]") {
  TempDir dir;
  std::string missing = dir.path + "/consoles";
  CHECK(samples::problems(with_console_dir(missing)) ==
        Lines{"t.yaml:8:16: sim.console_dir: " + missing + ": No such file or directory"});
  std::ofstream(missing) << "a file\n";
  CHECK(samples::problems(with_console_dir(missing)) ==
        Lines{"t.yaml:8:16: sim.console_dir: " + missing + " is not a directory"});
  CHECK(samples::problems(with_console_dir("consoles")) ==
        Lines{"t.yaml:8:16: console_dir: must be an absolute path, got 'consoles'"});
}

TEST_CASE("console_dir: a domain without a tty there, or with a file that is no tty, is refused",
          "[config][sim]") {
  TempDir dir;
  Pty db1;
  std::ofstream(dir.path + "/web1") << "not a tty\n";
  fs::create_symlink(db1.path, dir.path + "/db1");
  CHECK(samples::problems(with_console_dir(dir.path)) ==
        Lines{"t.yaml:5:3: domain 'web1': its console " + dir.path +
              "/web1 (sim.console_dir) is not a tty (a pty slave, /dev/pts/N, or a link to one)"});
  fs::remove(dir.path + "/web1");
  fs::create_symlink("/dev/null", dir.path + "/web1");  // a character device, but no tty
  CHECK(samples::problems(with_console_dir(dir.path)).size() == 1);
  fs::remove(dir.path + "/web1");
  fs::remove(dir.path + "/db1");
  CHECK(samples::problems(with_console_dir(dir.path)) ==
        Lines{"t.yaml:5:3: domain 'web1': its console " + dir.path +
                  "/web1 (sim.console_dir): No such file or directory",
              "t.yaml:6:3: domain 'db1': its console " + dir.path +
                  "/db1 (sim.console_dir): No such file or directory"});
}

TEST_CASE("console_dir is the simulator's: a Xen node does not look at it", "[config][sim]") {
  TempDir dir;
  auto c = parse_config(with_console_dir(dir.path + "/consoles", "xen"), "t.yaml");
  CHECK(c->hypervisor == HypervisorKind::xen);
}

}  // namespace xcg::config
