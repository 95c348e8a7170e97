#include <catch2/catch.hpp>

#include <string>

#include "tests/load/console_check.h"

using xcg::load::ConsoleCheck;

namespace {

const std::string kHint = "[xcg: console of web1; Ctrl-] detaches]\r\n";

std::string numbers(uint64_t from, uint64_t to, const std::string& domain = "web1") {
  std::string out;
  for (uint64_t n = from; n <= to; ++n) out += domain + " " + std::to_string(n) + "\r\n";
  return out;
}

std::string banner(unsigned domid) {
  return "\r\nBooting count guest web1 (domid " + std::to_string(domid) + ")\r\n";
}

std::string reboot(uint64_t last, unsigned domid) {
  return "web1 halt " + std::to_string(last) + "\r\n\r\n[xcg: web1 rebooted, new domid " +
         std::to_string(domid) + "]\r\n" + banner(domid);
}

// Feeds `s` one byte at a time, so that every line is split across reads.
void feed_bytewise(ConsoleCheck& check, const std::string& s) {
  for (char c : s) check.feed(std::string_view(&c, 1));
}

}  // namespace

TEST_CASE("a whole boot and a replay that starts mid-boot are accepted") {
  ConsoleCheck whole("web1");
  whole.feed(kHint + banner(3) + numbers(1, 500) + "web1 5");  // a partial last line is pending
  CHECK(whole.ok());
  CHECK(whole.first_number() == 1);
  CHECK(whole.last_number() == 500);

  ConsoleCheck late("web1");
  feed_bytewise(late, kHint + numbers(4711, 4800));
  CHECK(late.ok());
  CHECK(late.first_number() == 4711);
  CHECK(late.numbers_seen() == 90);
}

TEST_CASE("a gap, a duplicate and a reorder are each an error naming the numbers") {
  ConsoleCheck gap("web1");
  gap.feed(kHint + numbers(1, 10) + numbers(12, 20));
  CHECK_FALSE(gap.ok());
  CHECK(gap.error().find("after 10 came 12: 1 lines lost") != std::string::npos);

  ConsoleCheck dup("web1");
  dup.feed(kHint + numbers(1, 10) + numbers(10, 20));
  CHECK(dup.error().find("after 10 came 10") != std::string::npos);

  ConsoleCheck reorder("web1");
  reorder.feed(kHint + numbers(1, 10) + numbers(9, 9));
  CHECK(reorder.error().find("duplicate or reorder") != std::string::npos);
}

TEST_CASE("the hint must come first, and foreign or partial lines are errors") {
  ConsoleCheck no_hint("web1");
  no_hint.feed(numbers(1, 3));
  CHECK(no_hint.error().find("hint") != std::string::npos);

  ConsoleCheck other("web1");
  other.feed(kHint + numbers(1, 3) + numbers(4, 4, "web2"));
  CHECK(other.error().find("unexpected line") != std::string::npos);

  // A replay cut in the middle of a line.
  ConsoleCheck half("web1");
  half.feed(kHint + "b1 77\r\n" + numbers(78, 80));
  CHECK_FALSE(half.ok());
}

TEST_CASE("a reboot: halt at the last number, notice, banner, numbers from 1") {
  ConsoleCheck check("web1");
  feed_bytewise(check, kHint + banner(1) + numbers(1, 50) + reboot(50, 2) + numbers(1, 30));
  CHECK(check.ok());
  CHECK(check.reboots() == 1);
  CHECK(check.last_number() == 30);

  // The replay may start right at the notice of a fresh boot.
  ConsoleCheck fresh("web1");
  fresh.feed(kHint + "\r\n[xcg: web1 rebooted, new domid 9]\r\n" + banner(9) + numbers(1, 5));
  CHECK(fresh.ok());
  CHECK(fresh.reboots() == 0);
}

TEST_CASE("what a reboot may lose is caught") {
  ConsoleCheck tail_lost("web1");
  tail_lost.feed(kHint + numbers(1, 50) + "\r\n[xcg: web1 rebooted, new domid 2]\r\n" + banner(2));
  CHECK(tail_lost.error().find("without the guest's halt line") != std::string::npos);

  ConsoleCheck halt_mismatch("web1");
  halt_mismatch.feed(kHint + numbers(1, 50) + reboot(53, 2));
  CHECK(halt_mismatch.error().find("halted after 53 but the last number seen was 50") != std::string::npos);

  ConsoleCheck wrong_domid("web1");
  wrong_domid.feed(kHint + numbers(1, 5) + "web1 halt 5\r\n[xcg: web1 rebooted, new domid 2]\r\n" +
                   banner(3));
  CHECK(wrong_domid.error().find("notice said domid 2") != std::string::npos);

  ConsoleCheck restart("web1");
  restart.feed(kHint + numbers(1, 5) + reboot(5, 2) + numbers(2, 3));
  CHECK(restart.error().find("first number should be 1") != std::string::npos);
}

TEST_CASE("a skip marker is an error for a reading viewer") {
  ConsoleCheck check("web1");
  check.feed(kHint + numbers(1, 5) + "\r\n[xcg: 12345 bytes skipped]\r\n" + numbers(900, 901));
  CHECK(check.error().find("skipped 12345 bytes") != std::string::npos);
}
