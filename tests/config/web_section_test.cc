// The `web:` section: what a good one reads as, and the message for each thing it refuses.
#include "config/web_section.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "tests/config/samples.h"

namespace xcg::config {
namespace {

using Lines = std::vector<std::string>;

// The required top-level fields on lines 1 to 4, then "web:" on line 5 and `lines` from line
// 6 on, each indented by two spaces.
std::string with_web(const Lines& lines) {
  std::string out =
      "listen: ['127.0.0.1:2222']\nhost_keys: [/etc/xcg/host_key]\nhypervisor: sim\n"
      "domains: {web1: {}}\nweb:\n";
  for (const auto& l : lines) out += "  " + l + "\n";
  return out;
}

Lines problems(const Lines& web) { return samples::problems(with_web(web)); }

const std::string kListen = "listen: ['127.0.0.1:8443']";
const std::string kUrl = "public_url: https://console.example";

// One problem in the line after a good listen (line 7, or 6 when `line` is the listen).
Lines url_problems(const std::string& url) { return problems({kListen, "public_url: " + url}); }

TEST_CASE("a full web section reads into WebSettings", "[config][web]") {
  auto c = parse_config(
      with_web({"listen: ['0.0.0.0:443', '[::]:0', 'http://127.0.0.1:8080', "
                "'http://[::1]:8081', 'unix:/run/xcg/web.sock']",
                "public_url: HTTPS://Console.Example:443/", "tls_cert: /srv/web/../tls/c.pem",
                "tls_key: /srv/tls/k.pem", "link_ttl: 2m", "panel_secret_file: /etc/xcg/panel.secret",
                "trusted_proxies: [127.0.0.1, 10.1.0.0/16, '::1/128', '2001:DB8::/32']"}),
      "t.yaml");
  REQUIRE(c->web);
  const auto& w = *c->web;
  REQUIRE(w.listen.size() == 2);
  CHECK(w.listen[0].host == "0.0.0.0");
  CHECK(w.listen[0].port == 443);
  CHECK((w.listen[1].ipv6 && w.listen[1].port == 0));
  REQUIRE(w.plain_listen.size() == 3);
  CHECK((w.plain_listen[0].host == "127.0.0.1" && w.plain_listen[0].port == 8080));
  CHECK((w.plain_listen[1].host == "::1" && w.plain_listen[1].text == "http://[::1]:8081"));
  CHECK((w.plain_listen[2].unix_path == "/run/xcg/web.sock" &&
         w.plain_listen[2].text == "unix:/run/xcg/web.sock"));
  CHECK(w.public_url == "https://console.example");
  CHECK(w.tls_cert == "/srv/tls/c.pem");
  CHECK(w.tls_key == "/srv/tls/k.pem");
  CHECK(w.link_ttl_s == 120);
  CHECK(w.panel_secret_file == "/etc/xcg/panel.secret");
  CHECK(w.trusted_proxies == Lines{"127.0.0.1/32", "10.1.0.0/16", "::1/128", "2001:db8::/32"});
}

TEST_CASE("web's defaults, and no section at all", "[config][web]") {
  auto c = parse_config(with_web({kListen, kUrl}), "t.yaml");
  REQUIRE(c->web);
  CHECK(c->web->tls_cert == "/var/lib/xcg/web.crt");
  CHECK(c->web->tls_key == "/var/lib/xcg/web.key");
  CHECK(c->web->link_ttl_s == 60);
  CHECK(c->web->panel_secret_file.empty());
  CHECK(c->web->trusted_proxies.empty());
  CHECK(c->web->plain_listen.empty());
  auto none =
      parse_config("listen: ['127.0.0.1:2222']\nhost_keys: [/k]\nhypervisor: sim\ndomains: {}\n", "t.yaml");
  CHECK(!none->web);
}

TEST_CASE("web needs listen and public_url, and knows its fields", "[config][web]") {
  CHECK(problems({"link_ttl: 30"}) == Lines{"t.yaml:6:3: missing required field 'listen'",
                                            "t.yaml:6:3: missing required field 'public_url'"});
  CHECK(problems({kListen, kUrl, "tls_crt: /x"}) ==
        Lines{"t.yaml:8:3: unknown field 'tls_crt': expected listen, public_url, tls_cert, tls_key, "
              "link_ttl, panel_secret_file or trusted_proxies"});
  CHECK(problems({"listen: []", kUrl}) == Lines{"t.yaml:6:11: listen: must list at least one item"});
  CHECK(samples::problems(
            "listen: ['127.0.0.1:2222']\nhost_keys: [/k]\nhypervisor: sim\ndomains: {}\nweb: 5\n") ==
        Lines{"t.yaml:5:6: web: expected a mapping"});
}

TEST_CASE("web.listen refuses what is not a loopback plain or a TLS address", "[config][web]") {
  CHECK(problems({"listen: ['127.0.0.1:8443', 'http://0.0.0.0:80']", kUrl}) ==
        Lines{"t.yaml:6:30: listen: plain HTTP 'http://0.0.0.0:80' is allowed only on loopback "
              "(127.0.0.0/8 or [::1]), behind a proxy on this host; a TLS listener is written HOST:PORT"});
  CHECK(problems({"listen: ['http://[::2]:80']", kUrl}).size() == 1);
  CHECK(
      problems({"listen: ['https://0.0.0.0:443']", kUrl}) ==
      Lines{
          "t.yaml:6:12: listen: 'https://0.0.0.0:443': write a TLS listener as HOST:PORT, without https://"});
  CHECK(problems({"listen: ['unix:run/web.sock', 'unix:/run/xcg/']", kUrl}) ==
        Lines{"t.yaml:6:12: listen: 'unix:run/web.sock': a unix socket is written unix:/ABSOLUTE/PATH",
              "t.yaml:6:33: listen: 'unix:/run/xcg/': a unix socket is written unix:/ABSOLUTE/PATH"});
  CHECK(problems({"listen: ['unix:/" + std::string(107, 'a') + "']", kUrl}) ==
        Lines{"t.yaml:6:12: listen: 'unix:/" + std::string(107, 'a') +
              "': a unix socket path has at most 107 bytes"});
  CHECK(problems({"listen: ['console.example:443']", kUrl}) ==
        Lines{"t.yaml:6:12: listen: bad listen address 'console.example:443': expected IPV4:PORT or "
              "[IPV6]:PORT"});
  CHECK(
      problems({"listen: ['http://127.0.0.1:99999']", kUrl}) ==
      Lines{
          "t.yaml:6:12: listen: bad port '99999' in listen address '127.0.0.1:99999': expected 0 to 65535"});
}

TEST_CASE("web.public_url is https://HOST[:PORT] and nothing more", "[config][web]") {
  auto at = [](const std::string& url, const std::string& why) {
    return Lines{"t.yaml:7:15: public_url: '" + url + "': " + why};
  };
  CHECK(url_problems("ftp://console.example") == at("ftp://console.example", "expected https://HOST[:PORT]"));
  CHECK(url_problems("console.example") == at("console.example", "expected https://HOST[:PORT]"));
  CHECK(url_problems("https://console.example/app") ==
        at("https://console.example/app", "no path allowed: the page is at the root"));
  CHECK(url_problems("'https://console.example/?a=b'") ==
        at("https://console.example/?a=b", "no query (?) or fragment (#) allowed: the page is at the root"));
  CHECK(url_problems("'https://console.example#x'") ==
        at("https://console.example#x", "no query (?) or fragment (#) allowed: the page is at the root"));
  CHECK(url_problems("https://me@console.example") ==
        at("https://me@console.example", "no user name (@) allowed"));
  CHECK(url_problems("https://console_example") ==
        at("https://console_example", "the host must be a DNS name, an IPv4 address or [IPV6]"));
  CHECK(url_problems("https://[::g]") ==
        at("https://[::g]", "the host must be a DNS name, an IPv4 address or [IPV6]"));
  CHECK(url_problems("https://console.example:0") ==
        at("https://console.example:0", "the port must be a number from 1 to 65535"));
  CHECK(url_problems("'https://console.example:'") ==
        at("https://console.example:", "the host must be a DNS name, an IPv4 address or [IPV6]"));
  CHECK(url_problems("''") == Lines{"t.yaml:7:15: public_url: must not be empty"});
}

TEST_CASE("web.public_url is http:// only behind a proxy on this host", "[config][web]") {
  CHECK(url_problems("http://127.0.0.1:8080") ==
        Lines{"t.yaml:7:15: public_url: http:// only when every listener is plain HTTP (http://...); TLS "
              "listeners need https://"});
  auto plain = [](const std::string& url) {
    return problems({"listen: ['http://127.0.0.1:8080']", "public_url: " + url});
  };
  CHECK(plain("http://console.example") ==
        Lines{"t.yaml:7:15: public_url: http:// only for a loopback host (localhost, 127.0.0.0/8 or [::1]), "
              "got 'console.example'; customers use https://"});
  CHECK(plain("http://localhost:8080").empty());
  CHECK(plain("http://[::1]:8080").empty());
  CHECK(plain("https://console.example").empty());
}

TEST_CASE("web's paths, lifetime and proxies are checked", "[config][web]") {
  CHECK(problems({kListen, kUrl, "tls_cert: web.crt"}) ==
        Lines{"t.yaml:8:13: tls_cert: must be an absolute path, got 'web.crt'"});
  CHECK(problems({kListen, kUrl, "tls_key: ''"}) == Lines{"t.yaml:8:12: tls_key: must not be empty"});
  CHECK(problems({kListen, kUrl, "panel_secret_file: panel"}) ==
        Lines{"t.yaml:8:22: panel_secret_file: must be an absolute path, got 'panel'"});
  CHECK(problems({kListen, kUrl, "link_ttl: 0"}) ==
        Lines{"t.yaml:8:13: link_ttl: expected a duration from 1 to 600 seconds, got '0'"});
  CHECK(problems({kListen, kUrl, "link_ttl: 11m"}) ==
        Lines{"t.yaml:8:13: link_ttl: expected a duration from 1 to 600 seconds, got '11m' (660 seconds)"});
  CHECK(problems({kListen, kUrl, "trusted_proxies: [10.0.0.1/8, 'fe80::/129', proxy]"}) ==
        Lines{"t.yaml:8:21: trusted_proxies: bad network '10.0.0.1/8': expected ADDRESS/PREFIX with no bits "
              "set below the prefix, like 127.0.0.1/32 or ::1/128",
              "t.yaml:8:33: trusted_proxies: bad network 'fe80::/129': expected ADDRESS/PREFIX with no bits "
              "set below the prefix, like 127.0.0.1/32 or ::1/128",
              "t.yaml:8:47: trusted_proxies: bad network 'proxy': expected ADDRESS/PREFIX with no bits set "
              "below the prefix, like 127.0.0.1/32 or ::1/128"});
}

TEST_CASE("parse_public_url takes the URL apart and normalises it", "[config][web]") {
  auto url = parse_public_url("https://[2001:DB8::1]:8443/");
  REQUIRE(url);
  CHECK((url->https && url->ipv6 && url->ip));
  CHECK(url->host == "2001:db8::1");
  CHECK(url->port == 8443);
  CHECK(url->authority == "[2001:db8::1]:8443");
  CHECK(url->normal == "https://[2001:db8::1]:8443");
  auto name = parse_public_url("https://Console.Example");
  REQUIRE(name);
  CHECK((!name->ip && name->port == 0 && name->authority == "console.example"));
  auto ipv4 = parse_public_url("http://127.0.0.1:80");
  REQUIRE(ipv4);
  CHECK((ipv4->ip && !ipv4->https && ipv4->normal == "http://127.0.0.1"));
  CHECK(!parse_public_url("https://-bad.example"));
  CHECK(!parse_public_url("https://a..b"));
}

TEST_CASE("parse_cidr accepts networks and lone addresses", "[config][web]") {
  CHECK(parse_cidr("192.168.0.0/16") == "192.168.0.0/16");
  CHECK(parse_cidr("192.168.1.0/23") == std::nullopt);
  CHECK(parse_cidr("0.0.0.0/0") == "0.0.0.0/0");
  CHECK(parse_cidr("10.0.0.7") == "10.0.0.7/32");
  CHECK(parse_cidr("fd00:0::/8") == "fd00::/8");
  CHECK(parse_cidr("fd00::1/127") == std::nullopt);
  CHECK(parse_cidr("10.0.0.0/33") == std::nullopt);
  CHECK(parse_cidr("10.0.0.0/") == std::nullopt);
  CHECK(parse_cidr("10.0.0.0/-1") == std::nullopt);
}

}  // namespace
}  // namespace xcg::config
