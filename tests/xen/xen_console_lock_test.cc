// ConsoleLock against what xenconsole (`xl console`) does with the same file.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/xen/xen_test_support.h"
#include "xen/console_lock.h"

namespace xcg::xen::testing {
namespace {

namespace fs = std::filesystem;

// xenconsole's console_lock(), one round: open (creating), flock(LOCK_EX | LOCK_NB).
// Returns the locked descriptor, or an invalid one with errno set.
UniqueFd xenconsole_lock(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, S_IRUSR | S_IWUSR));
  REQUIRE(fd);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) return UniqueFd();
  return fd;
}

TEST_CASE("while xcg holds a console lock, xl console can't take it") {
  TempDir dir;
  auto lock = ConsoleLock::take(dir.path(), 7);
  REQUIRE(lock);
  CHECK(lock->held());
  CHECK(lock->domid() == 7);
  std::string path = dir / "xenconsole.7";
  CHECK(ConsoleLock::path_for(dir.path(), 7) == path);
  CHECK(fs::exists(path));
  errno = 0;
  CHECK_FALSE(xenconsole_lock(path));
  CHECK(errno == EWOULDBLOCK);
  // Other domains are not affected.
  CHECK(xenconsole_lock(dir / "xenconsole.8"));
}

TEST_CASE("releasing unlinks the lock file, then unlocks, as xenconsole does") {
  TempDir dir;
  std::string path = dir / "xenconsole.3";
  auto lock = ConsoleLock::take(dir.path(), 3);
  REQUIRE(lock);
  lock->release();
  CHECK_FALSE(lock->held());
  CHECK_FALSE(fs::exists(path));
  CHECK(xenconsole_lock(path));
}

TEST_CASE("xcg can't take a console lock that xl console holds") {
  TempDir dir;
  UniqueFd operator_lock = xenconsole_lock(dir / "xenconsole.3");
  REQUIRE(operator_lock);
  auto lock = ConsoleLock::take(dir.path(), 3);
  REQUIRE_FALSE(lock);
  CHECK(lock.error().code == Errc::unavailable);
  CHECK(lock.error().sys_errno == EWOULDBLOCK);
  CHECK_THAT(lock.error().message, Catch::Contains("in use"));
  // xenconsole lets go: unlink, close. Then it is ours.
  REQUIRE(::unlink((dir / "xenconsole.3").c_str()) == 0);
  operator_lock.reset();
  CHECK(ConsoleLock::take(dir.path(), 3));
}

TEST_CASE("a stale lock file nobody holds is taken") {
  TempDir dir;
  write_file(dir / "xenconsole.4", "", fs::perms::owner_read | fs::perms::owner_write);
  auto lock = ConsoleLock::take(dir.path(), 4);
  REQUIRE(lock);
  CHECK(lock->held());
}

TEST_CASE("a missing lock directory is an error, not a crash") {
  TempDir dir;
  auto lock = ConsoleLock::take(dir / "missing", 4);
  REQUIRE_FALSE(lock);
  CHECK(lock.error().code == Errc::system);
  CHECK(lock.error().sys_errno == ENOENT);
}

TEST_CASE("a moved console lock stays held; assigning over one releases it") {
  TempDir dir;
  auto first = ConsoleLock::take(dir.path(), 1);
  auto second = ConsoleLock::take(dir.path(), 2);
  REQUIRE(first);
  REQUIRE(second);
  ConsoleLock moved = std::move(*first);
  CHECK(moved.held());
  CHECK_FALSE(first->held());
  first->release();  // a moved-from lock has nothing to release
  CHECK(fs::exists(dir / "xenconsole.1"));
  moved = std::move(*second);
  CHECK(moved.domid() == 2);
  CHECK_FALSE(fs::exists(dir / "xenconsole.1"));
  CHECK(fs::exists(dir / "xenconsole.2"));
  CHECK_FALSE(xenconsole_lock(dir / "xenconsole.2"));
}

}  // namespace
}  // namespace xcg::xen::testing
