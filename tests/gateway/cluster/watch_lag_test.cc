// The watch's lag as a time: from the first probe that found the store ahead until the watch
// has applied what that probe found.
#include "gateway/cluster/watch_lag.h"

#include <catch2/catch.hpp>

namespace xcg {
namespace {

using namespace std::chrono_literals;

const WatchLag::Clock::time_point kT0{};

TEST_CASE("watch lag: none while the watch has applied what the store holds", "[watchlag]") {
  WatchLag lag;
  lag.probed(10, 10, kT0);
  CHECK(lag.seconds(kT0 + 5s) == 0);
}

TEST_CASE("watch lag: from the first probe ahead until that revision is applied", "[watchlag]") {
  WatchLag lag;
  lag.probed(12, 10, kT0);
  lag.probed(12, 10, kT0 + 3s);  // the same store revision: still since the first
  CHECK(lag.seconds(kT0 + 4s) == Approx(4));
  lag.applied(11);
  CHECK(lag.seconds(kT0 + 5s) == Approx(5));
  lag.applied(12);
  CHECK(lag.seconds(kT0 + 6s) == 0);
}

TEST_CASE("watch lag: a later revision found ahead counts from its own probe", "[watchlag]") {
  WatchLag lag;
  lag.probed(12, 10, kT0);
  lag.probed(15, 11, kT0 + 3s);
  lag.applied(13);
  CHECK(lag.seconds(kT0 + 4s) == Approx(1));
  lag.applied(15);
  CHECK(lag.seconds(kT0 + 4s) == 0);
}

TEST_CASE("watch lag: a watch stuck for long keeps its first probe's time", "[watchlag]") {
  WatchLag lag;
  for (int i = 0; i < 1000; ++i) lag.probed(11 + i, 10, kT0 + std::chrono::seconds(3 * i));
  CHECK(lag.seconds(kT0 + 3000s) == Approx(3000));
  lag.applied(1000);
  CHECK(lag.seconds(kT0 + 3000s) > 0);  // the last revisions found are not applied yet
  lag.applied(1010);
  CHECK(lag.seconds(kT0 + 3000s) == 0);
}

}  // namespace
}  // namespace xcg
