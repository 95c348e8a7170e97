// Admission: MaxStartups' random early drop, the per-source cap, the per-domain cap, and
// counts that leave nothing behind.
#include <catch2/catch.hpp>

#include "gateway/broker/admission.h"

using namespace xcg;
using namespace xcg::gateway;

namespace {

config::Limits limits() {
  config::Limits l;
  l.startups_begin = 2;
  l.startups_rate = 50;
  l.startups_full = 4;
  l.max_startups_per_source = 3;
  l.max_sessions_per_domain = 2;
  return l;
}

}  // namespace

TEST_CASE("below startups_begin every connection is admitted, whatever the dice say", "[admission]") {
  Admission a(limits(), [] { return 0u; });
  CHECK_FALSE(a.refusal("10.0.0.0/24"));
  a.login_started("10.0.0.0/24");
  CHECK_FALSE(a.refusal("10.0.1.0/24"));
}

TEST_CASE("between begin and full the drop rate climbs from startups_rate to all", "[admission]") {
  unsigned dice = 49;
  Admission a(limits(), [&] { return dice; });
  a.login_started("a");
  a.login_started("b");  // 2 logging in: at begin, rate 50 %
  CHECK(a.refusal("c") == std::optional<std::string_view>("max_startups (random early drop)"));
  dice = 50;
  CHECK_FALSE(a.refusal("c"));
  a.login_started("c");  // 3: halfway to full, 75 %
  dice = 74;
  CHECK(a.refusal("d"));
  dice = 75;
  CHECK_FALSE(a.refusal("d"));
  a.login_started("d");  // 4: full
  dice = 99;
  CHECK(a.refusal("e") == std::optional<std::string_view>("max_startups (full)"));
}

TEST_CASE("one source network cannot take more than its share of logins", "[admission]") {
  auto l = limits();
  l.startups_begin = l.startups_full = 100;
  Admission a(l, [] { return 99u; });
  for (int i = 0; i < 3; ++i) a.login_started("203.0.113.0/24");
  CHECK(a.refusal("203.0.113.0/24") == std::optional<std::string_view>("max_startups_per_source"));
  CHECK_FALSE(a.refusal("198.51.100.0/24"));
  a.login_ended("203.0.113.0/24");
  CHECK_FALSE(a.refusal("203.0.113.0/24"));
}

TEST_CASE("a login moves from its source's count to its domain's", "[admission]") {
  Admission a(limits(), [] { return 99u; });
  a.login_started("s");
  a.login_started("s");
  a.logged_in("s", "web1");
  CHECK(a.logging_in() == 1);
  CHECK(a.domain_has_room("web1"));
  a.logged_in("s", "web1");
  CHECK_FALSE(a.domain_has_room("web1"));
  CHECK(a.domain_has_room("db1"));
  a.session_ended("web1");
  CHECK(a.domain_has_room("web1"));
}

TEST_CASE("sources and domains with nothing counted leave no entry behind", "[admission]") {
  auto l = limits();
  l.startups_begin = l.startups_full = 10000;
  Admission a(l, [] { return 99u; });
  for (int i = 0; i < 1000; ++i) {
    std::string source = "10." + std::to_string(i) + ".0.0/16";
    a.login_started(source);
    if (i % 2) a.login_ended(source);
    else a.logged_in(source, "web" + std::to_string(i));
  }
  CHECK(a.sources_counted() == 0);
  CHECK(a.domains_counted() == 500);
  for (int i = 0; i < 1000; i += 2) a.session_ended("web" + std::to_string(i));
  CHECK(a.domains_counted() == 0);
  CHECK(a.logging_in() == 0);
}

TEST_CASE("new limits apply to the next decision, counts stay", "[admission]") {
  auto l = limits();
  l.startups_begin = l.startups_full = 100;
  Admission a(l, [] { return 99u; });
  a.login_started("s");
  a.login_started("s");
  CHECK_FALSE(a.refusal("s"));
  l.max_startups_per_source = 2;
  a.set_limits(l);
  CHECK(a.refusal("s"));
}

TEST_CASE("a login a trusted proxy forwarded counts for the client's network, within its cap",
          "[admission]") {
  Admission a(limits(), [] { return 99u; });
  a.login_started("proxy");
  CHECK(a.move_login("proxy", "client"));
  CHECK(a.sources_counted() == 1);  // the proxy's entry went with its last login
  for (int i = 0; i < 2; ++i) a.login_started("client");
  CHECK(a.refusal("client") == std::optional<std::string_view>("max_startups_per_source"));
  a.login_started("proxy");
  CHECK_FALSE(a.move_login("proxy", "client"));
  CHECK(a.logging_in() == 4);
  a.logged_in("proxy", "web1");  // the refused login still counts where it was
  CHECK(a.sources_counted() == 1);
}
