// The seccomp program the broker compiles once and each session loads: the same filter as
// compiling it in the session, and refused when it is not a program.
#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#include "gateway/session/seccomp_filter.h"
#include "gateway/session/seccomp_program.h"

using namespace xcg;
using namespace xcg::gateway;

namespace {

bool same(const SeccompProgram& a, const SeccompProgram& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(sock_filter)) == 0;
}

UniqueFd memfd_with(const std::string& bytes) {
  UniqueFd fd(::memfd_create("test", MFD_CLOEXEC));
  REQUIRE(fd);
  REQUIRE(::write(fd.get(), bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  return fd;
}

std::string bytes_of(const SeccompProgram& program) {
  return {reinterpret_cast<const char*>(program.data()), program.size() * sizeof(sock_filter)};
}

}  // namespace

TEST_CASE("the broker's program, with a session's pid put in, is the filter compiled for that pid",
          "[seccomp]") {
  for (Filter filter : {Filter::session, Filter::web}) {
    for (pid_t pid : {1, 4242, 4194304}) {
      auto fd = seccomp_program_memfd(filter);
      REQUIRE(fd);
      auto handed = read_seccomp_program(fd->get(), pid);
      REQUIRE(handed);
      auto compiled = compile_seccomp_filter(filter, static_cast<uint32_t>(pid));
      REQUIRE(compiled);
      CHECK(same(*handed, *compiled));
    }
  }
}

TEST_CASE("the filters differ in the pid and between session and web", "[seccomp]") {
  auto a = compile_seccomp_filter(Filter::session, 100);
  auto b = compile_seccomp_filter(Filter::session, 101);
  auto web = compile_seccomp_filter(Filter::web, 100);
  REQUIRE((a && b && web));
  CHECK_FALSE(same(*a, *b));
  CHECK_FALSE(same(*a, *web));
}

TEST_CASE("the broker's program is sealed: no session can change it for the next", "[seccomp]") {
  auto fd = seccomp_program_memfd(Filter::session);
  REQUIRE(fd);
  CHECK(::pwrite(fd->get(), "x", 1, 0) < 0);
  CHECK(::ftruncate(fd->get(), 8) < 0);
}

TEST_CASE("a missing or malformed program is refused", "[seccomp]") {
  auto good = compile_seccomp_filter(Filter::session, kOwnPidPlaceholder);
  REQUIRE(good);
  const std::string whole = bytes_of(*good);
  CHECK(read_seccomp_program(memfd_with(whole).get(), 7));

  CHECK_FALSE(read_seccomp_program(-1, 7));                             // no descriptor
  CHECK_FALSE(read_seccomp_program(memfd_with("").get(), 7));           // empty
  CHECK_FALSE(read_seccomp_program(memfd_with(whole + "x").get(), 7));  // not whole instructions
  CHECK_FALSE(read_seccomp_program(memfd_with(std::string((BPF_MAXINSNS + 1) * 8, '\0')).get(), 7));
  auto without = compile_seccomp_filter(Filter::session, 100);  // no placeholder
  REQUIRE(without);
  CHECK_FALSE(read_seccomp_program(memfd_with(bytes_of(*without)).get(), 7));
  CHECK_FALSE(read_seccomp_program(memfd_with(whole + whole).get(), 7));  // the placeholder twice
}
