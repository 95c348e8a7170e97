#include "base/text.h"

#include <catch2/catch.hpp>

using namespace std::chrono;

TEST_CASE("printable keeps ASCII text and neutralises everything else") {
  CHECK(xcg::printable("alice@laptop") == "alice@laptop");
  CHECK(xcg::printable("a\tb") == "a b");
  CHECK(xcg::printable("\x1b[2Jred\r\nline") == "?[2Jred??line");
  CHECK(xcg::printable("caf\xc3\xa9") == "caf??");
  CHECK(xcg::printable(std::string_view("a\0b", 3)) == "a?b");
  CHECK(xcg::printable("\x7f") == "?");
  CHECK(xcg::printable("").empty());
}

TEST_CASE("printable cuts at the byte limit") {
  CHECK(xcg::printable("abcdef", 3) == "abc");
  CHECK(xcg::printable("ab", 3) == "ab");
  CHECK(xcg::printable("abc", 0).empty());
}

TEST_CASE("UTC timestamps and clock times") {
  // 2026-11-26T02:07:50.123Z
  system_clock::time_point t{seconds{1795658870} + milliseconds{123}};
  CHECK(xcg::utc_timestamp(t) == "2026-11-26T02:07:50Z");
  CHECK(xcg::utc_timestamp(t, true) == "2026-11-26T02:07:50.123Z");
  CHECK(xcg::utc_timestamp(system_clock::time_point{}, true) == "1970-01-01T00:00:00.000Z");
  CHECK(xcg::utc_clock_time(t) == "02:07:50 UTC");
}

TEST_CASE("trim drops ASCII whitespace at both ends only") {
  CHECK(xcg::trim("  ssh-ed25519 AAAA\t\r\n") == "ssh-ed25519 AAAA");
  CHECK(xcg::trim("\v\fa b\f") == "a b");
  CHECK(xcg::trim("a") == "a");
  CHECK(xcg::trim(" \t\r\n").empty());
  CHECK(xcg::trim("").empty());
}

TEST_CASE("join puts the separator between each two parts") {
  CHECK(xcg::join(std::vector<std::string_view>{"srv", "xcg", "chroot"}, "/") == "srv/xcg/chroot");
  CHECK(xcg::join(std::vector<std::string>{"a"}, "; ") == "a");
  CHECK(xcg::join(std::vector<std::string>{}, "; ").empty());
  CHECK(xcg::join(std::vector<std::string>{"", "b"}, ",") == ",b");
}
