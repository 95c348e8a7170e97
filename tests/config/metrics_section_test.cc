// The `metrics:` section: loopback or unix listeners only, each refusal with its reason.
#include "config/metrics_section.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "tests/config/samples.h"

namespace xcg::config {
namespace {

using Lines = std::vector<std::string>;

// The required top-level fields on lines 1 to 4, then "metrics:" on line 5 and its listen on 6.
std::string with_metrics(const std::string& listen) {
  return "listen: ['127.0.0.1:2222']\nhost_keys: [/etc/xcg/host_key]\nhypervisor: sim\n"
         "domains: {web1: {}}\nmetrics:\n  listen: " +
         listen + "\n";
}

Lines problems(const std::string& listen) { return samples::problems(with_metrics(listen)); }

}  // namespace

TEST_CASE("metrics listens on loopback addresses and unix sockets", "[config][metrics]") {
  auto c = parse_config(
      with_metrics("['127.0.0.1:9464', '[::1]:0', '127.1.2.3:80', 'unix:/run/xcg/metrics.sock']"), "t.yaml");
  REQUIRE(c->metrics);
  const auto& l = c->metrics->listen;
  REQUIRE(l.size() == 4);
  CHECK((l[0].host == "127.0.0.1" && l[0].port == 9464));
  CHECK((l[1].ipv6 && l[1].host == "::1"));
  CHECK(l[2].host == "127.1.2.3");
  CHECK((l[3].unix_path == "/run/xcg/metrics.sock" && l[3].text == "unix:/run/xcg/metrics.sock"));
  auto none =
      parse_config("listen: ['127.0.0.1:2222']\nhost_keys: [/k]\nhypervisor: sim\ndomains: {}\n", "t.yaml");
  CHECK(!none->metrics);
}

TEST_CASE("metrics refuses any address off this host", "[config][metrics]") {
  CHECK(problems("['0.0.0.0:9464']") ==
        Lines{"t.yaml:6:12: listen: '0.0.0.0:9464' is not allowed: metrics are served only on loopback "
              "(127.0.0.0/8 or [::1]) or a unix socket; let a proxy on this host carry them further"});
  CHECK(problems("['127.0.0.1:9464', '[::]:9464', '192.0.2.1:80']").size() == 2);
  CHECK(problems("['unix:run/metrics.sock']") ==
        Lines{"t.yaml:6:12: listen: 'unix:run/metrics.sock': a unix socket is written unix:/ABSOLUTE/PATH"});
  CHECK(problems("['localhost:9464']").size() == 1);
  CHECK(problems("[]") == Lines{"t.yaml:6:11: listen: must list at least one item"});
  CHECK(samples::problems("listen: ['127.0.0.1:2222']\nhost_keys: [/k]\nhypervisor: sim\ndomains: {}\n"
                          "metrics: {port: 1}\n") ==
        Lines{"t.yaml:5:10: missing required field 'listen'",
              "t.yaml:5:11: unknown field 'port': expected listen"});
}

}  // namespace xcg::config
