#include "gateway/web/http_rules.h"

#include <catch2/catch.hpp>

using namespace xcg::gateway::web;

namespace {

PublicUrl url(std::string_view text) {
  auto u = parse_public_url(text);
  REQUIRE(u);
  return *u;
}

std::string header(const Headers& headers, std::string_view name) {
  for (const auto& [n, v] : headers)
    if (n == name) return v;
  return "(absent)";
}

}  // namespace

TEST_CASE("public_url gives the authority and origin that Host and Origin must match", "[web]") {
  auto u = url("https://Console.Example");
  CHECK(u.host == "console.example");
  CHECK(u.port == 443);
  CHECK(u.authority == "console.example");
  CHECK(u.origin == "https://console.example");
  CHECK(url("https://console.example:8443/").authority == "console.example:8443");
  CHECK(url("https://console.example:443").authority == "console.example");
  CHECK(url("http://[::1]:8080").origin == "http://[::1]:8080");
  CHECK_FALSE(parse_public_url("console.example"));
  CHECK_FALSE(parse_public_url("ftp://console.example"));
  CHECK_FALSE(parse_public_url("https://console.example/path"));
  CHECK_FALSE(parse_public_url("https://console.example:0"));
  CHECK_FALSE(parse_public_url("https://console.example:99999"));
  CHECK_FALSE(parse_public_url("https://user@console.example"));
}

TEST_CASE("only GET of the page, its files and /ws is served", "[web]") {
  CHECK(route("GET", "/").kind == Route::Kind::file);
  CHECK(route("GET", "/").file == find_static_file("/"));
  CHECK(route("GET", "/ws").kind == Route::Kind::websocket);
  CHECK(route("POST", "/").status == 405);
  CHECK(route("HEAD", "/").status == 405);
  CHECK(route("GET", "/?token=x").status == 404);
  CHECK(route("GET", "/ws?x").status == 404);
  CHECK(route("GET", "/static/../etc/passwd").status == 404);
  CHECK(route("GET", "/index.html").status == 404);
  CHECK(route("GET", "").status == 404);
}

TEST_CASE("a metrics session serves GET /metrics and nothing else", "[web]") {
  CHECK(metrics_status("GET", "/metrics") == 200);
  CHECK(metrics_status("POST", "/metrics") == 405);
  CHECK(metrics_status("HEAD", "/metrics") == 405);
  CHECK(metrics_status("GET", "/") == 404);
  CHECK(metrics_status("GET", "/metrics/") == 404);
  CHECK(metrics_status("GET", "/metrics?x=1") == 404);
  CHECK(metrics_status("GET", "/ws") == 404);
}

TEST_CASE("Host must name public_url's host and port", "[web]") {
  auto u = url("https://console.example");
  CHECK(host_ok("console.example", u));
  CHECK(host_ok("CONSOLE.example:443", u));
  CHECK_FALSE(host_ok("console.example:8443", u));
  CHECK_FALSE(host_ok("evil.example", u));
  CHECK_FALSE(host_ok("", u));
  CHECK_FALSE(host_ok("console.example.", u));
  CHECK_FALSE(host_ok("console.example:", u));
  auto v6 = url("https://[2001:db8::1]:8443");
  CHECK(host_ok("[2001:db8::1]:8443", v6));
  CHECK_FALSE(host_ok("[2001:db8::1]", v6));
}

TEST_CASE("Origin must be public_url's origin exactly", "[web]") {
  auto u = url("https://console.example:8443");
  CHECK(origin_ok("https://console.example:8443", u));
  CHECK_FALSE(origin_ok("http://console.example:8443", u));
  CHECK_FALSE(origin_ok("https://console.example", u));
  CHECK_FALSE(origin_ok("https://evil.example:8443", u));
  CHECK_FALSE(origin_ok("null", u));
  CHECK_FALSE(origin_ok("", u));
  CHECK(origin_ok("https://console.example", url("https://console.example")));
}

TEST_CASE("every response carries the security headers; HSTS only over TLS", "[web]") {
  auto u = url("https://console.example:8443");
  auto h = security_headers(u, true, false);
  CHECK(
      header(h, "Content-Security-Policy") ==
      "default-src 'none'; script-src 'self'; style-src 'self' "
      "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='; img-src 'self'; font-src 'self'; "
      "connect-src wss://console.example:8443; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  CHECK(header(h, "X-Frame-Options") == "DENY");
  CHECK(header(h, "X-Content-Type-Options") == "nosniff");
  CHECK(header(h, "Referrer-Policy") == "no-referrer");
  CHECK(header(h, "Cross-Origin-Opener-Policy") == "same-origin");
  CHECK(header(h, "Cross-Origin-Resource-Policy") == "same-origin");
  CHECK(header(h, "Strict-Transport-Security") == "max-age=31536000");
  CHECK(header(h, "Cache-Control") == "no-store");
  CHECK(header(security_headers(u, false, true), "Strict-Transport-Security") == "(absent)");
  CHECK(header(security_headers(u, false, true), "Cache-Control") == "max-age=86400");
  CHECK(content_security_policy(url("https://console.example")).find("connect-src wss://console.example;") !=
        std::string::npos);
}

TEST_CASE("X-Forwarded-For: the last entry is the client", "[web]") {
  CHECK(forwarded_client("203.0.113.7") == "203.0.113.7");
  CHECK(forwarded_client("10.0.0.1, 198.51.100.2 , 203.0.113.7 ") == "203.0.113.7");
  CHECK(forwarded_client("203.0.113.7, 2001:db8::5") == "2001:db8::5");
  CHECK(forwarded_client("").empty());
  CHECK(forwarded_client("1.2.3.4, evil\r\nname").empty());
  CHECK(forwarded_client("1.2.3.4,").empty());
}

TEST_CASE("the subprotocol and gzip are recognised in their header lists", "[web]") {
  CHECK(offers_subprotocol("xcg.v1"));
  CHECK(offers_subprotocol("chat, xcg.v1"));
  CHECK_FALSE(offers_subprotocol("xcg.v2"));
  CHECK_FALSE(offers_subprotocol("xcg.v1x"));
  CHECK_FALSE(offers_subprotocol(""));
  CHECK(accepts_gzip("gzip, deflate, br"));
  CHECK(accepts_gzip("br;q=1.0, GZIP;q=0.5"));
  CHECK_FALSE(accepts_gzip("gzip;q=0"));
  CHECK_FALSE(accepts_gzip("gzip;q=0.0, br"));
  CHECK_FALSE(accepts_gzip("deflate, br"));
  CHECK_FALSE(accepts_gzip("x-gzip"));
}
