// The metrics writer: the exposition format's lines, its escaping, and counters as counters.
#include "gateway/broker/metrics.h"

#include <catch2/catch.hpp>

using namespace xcg::gateway;

TEST_CASE("a family is its HELP and TYPE lines, then its samples", "[metrics]") {
  MetricsWriter out;
  out.counter("xcg_logins_total", "Logins, by kind.");
  out.sample({{"kind", "ssh"}}, 3);
  out.sample({{"kind", "web"}}, 0);
  out.gauge("xcg_sessions_logging_in", "Connections that have not logged in yet.");
  out.sample(7);
  CHECK(out.text() ==
        "# HELP xcg_logins_total Logins, by kind.\n"
        "# TYPE xcg_logins_total counter\n"
        "xcg_logins_total{kind=\"ssh\"} 3\n"
        "xcg_logins_total{kind=\"web\"} 0\n"
        "# HELP xcg_sessions_logging_in Connections that have not logged in yet.\n"
        "# TYPE xcg_sessions_logging_in gauge\n"
        "xcg_sessions_logging_in 7\n");
}

TEST_CASE("several labels are separated by commas, in the order given", "[metrics]") {
  MetricsWriter out;
  out.counter("f_total", "h");
  out.sample({{"kind", "ssh"}, {"reason", "key"}}, 18446744073709551615ULL);
  CHECK(out.text().ends_with("f_total{kind=\"ssh\",reason=\"key\"} 18446744073709551615\n"));
}

TEST_CASE("label values and HELP text are escaped as the format says", "[metrics]") {
  CHECK(escape_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
  CHECK(escape_help("a\\b\"c\nd") == "a\\\\b\"c\\nd");
  MetricsWriter out;
  out.gauge("g", "two\nlines");
  out.sample({{"domain", "we\"b"}}, 1);
  CHECK(out.text() == "# HELP g two\\nlines\n# TYPE g gauge\ng{domain=\"we\\\"b\"} 1\n");
}

TEST_CASE("every login failure reason has its label", "[metrics]") {
  CHECK(login_failure_name(LoginFailure::key) == "key");
  CHECK(login_failure_name(LoginFailure::token) == "token");
  CHECK(login_failure_name(LoginFailure::domain_full) == "domain_full");
  CHECK(login_failure_name(LoginFailure::forwarded_for) == "forwarded_for");
}
