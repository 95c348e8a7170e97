#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "gateway/broker/session_program.h"

namespace fs = std::filesystem;
using xcg::gateway::session_program_for;
using xcg::gateway::web_program_for;

namespace {

// /usr/sbin/xcg and a build tree's xcg, under a temporary root.
struct Tree {
  fs::path root;
  Tree() {
    char dir[] = "/tmp/xcg-session-program-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    root = dir;
    for (const char* d : {"usr/sbin", "work/build"}) fs::create_directories(root / d);
    for (const char* f : {"usr/sbin/xcg", "work/build/xcg"}) std::ofstream(root / f) << "binary";
  }
  ~Tree() { fs::remove_all(root); }
  std::string installed_xcg() const { return root / "usr/sbin/xcg"; }
  std::string installed_session() const { return root / "usr/libexec/xcg/xcg-session"; }
};

}  // namespace

TEST_CASE("the installed xcg runs the installed session program") {
  Tree t;
  CHECK(session_program_for(t.installed_xcg(), t.installed_xcg(), t.installed_session()) ==
        t.installed_session());
}

TEST_CASE("the installed xcg reached through a linked directory is still the installed one") {
  // /proc/self/exe names the real path; the build-time path may go through a link (/sbin).
  Tree t;
  fs::create_directory_symlink(t.root / "usr/sbin", t.root / "sbin");
  CHECK(session_program_for(t.installed_xcg(), (t.root / "sbin/xcg").string(), t.installed_session()) ==
        t.installed_session());
}

TEST_CASE("any other xcg runs the xcg-session beside it") {
  Tree t;
  auto build_xcg = (t.root / "work/build/xcg").string();
  CHECK(session_program_for(build_xcg, t.installed_xcg(), t.installed_session()) ==
        (t.root / "work/build/xcg-session").string());
  SECTION("also when nothing is installed") {
    fs::remove(t.installed_xcg());
    CHECK(session_program_for(build_xcg, t.installed_xcg(), t.installed_session()) ==
          (t.root / "work/build/xcg-session").string());
  }
}

TEST_CASE("an xcg that cannot name itself runs the installed session program") {
  Tree t;
  CHECK(session_program_for("", t.installed_xcg(), t.installed_session()) == t.installed_session());
}

TEST_CASE("xcg-web is chosen by the same rule") {
  Tree t;
  const std::string installed_web = (t.root / "usr/libexec/xcg/xcg-web").string();
  CHECK(web_program_for(t.installed_xcg(), t.installed_xcg(), installed_web) == installed_web);
  CHECK(web_program_for((t.root / "work/build/xcg").string(), t.installed_xcg(), installed_web) ==
        (t.root / "work/build/xcg-web").string());
}
