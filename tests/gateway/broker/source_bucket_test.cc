// Per-source limits count networks, not single addresses (gateway/broker/listener.h source_bucket).
#include <catch2/catch.hpp>

#include "gateway/broker/listener.h"

using xcg::gateway::source_bucket;

TEST_CASE("source_bucket: IPv4 addresses by their prefix") {
  CHECK(source_bucket("203.0.113.7", 32, 64) == "203.0.113.7/32");
  CHECK(source_bucket("203.0.113.7", 24, 64) == "203.0.113.0/24");
  CHECK(source_bucket("203.0.113.200", 24, 64) == source_bucket("203.0.113.7", 24, 64));
  CHECK(source_bucket("203.0.114.7", 24, 64) != source_bucket("203.0.113.7", 24, 64));
  // A prefix inside a byte keeps only its high bits.
  CHECK(source_bucket("10.255.255.255", 9, 64) == "10.128.0.0/9");
  CHECK(source_bucket("10.127.0.1", 9, 64) == "10.0.0.0/9");
  CHECK(source_bucket("255.255.255.255", 1, 64) == "128.0.0.0/1");
}

TEST_CASE("source_bucket: IPv6 addresses by their prefix, /64 a customer's network") {
  CHECK(source_bucket("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 32, 64) == "2001:db8:1:2::/64");
  CHECK(source_bucket("2001:db8:1:2::1", 32, 64) == source_bucket("2001:db8:1:2:ffff::9", 32, 64));
  CHECK(source_bucket("2001:db8:1:3::1", 32, 64) != source_bucket("2001:db8:1:2::1", 32, 64));
  CHECK(source_bucket("2001:db8:1:2::1", 32, 128) == "2001:db8:1:2::1/128");
  CHECK(source_bucket("2001:db8:1:2::1", 32, 48) == "2001:db8:1::/48");
  CHECK(source_bucket("2001:db8:ffff::1", 32, 36) == "2001:db8:f000::/36");
  // The IPv4 prefix does not apply to IPv6, nor the other way round.
  CHECK(source_bucket("2001:db8:1:2::1", 8, 64) == "2001:db8:1:2::/64");
  CHECK(source_bucket("203.0.113.7", 32, 8) == "203.0.113.7/32");
}

TEST_CASE("source_bucket: a v4-mapped IPv6 address counts as its IPv4 address") {
  // What a dual-stack listener on [::] reports for an IPv4 client.
  CHECK(source_bucket("::ffff:203.0.113.7", 32, 64) == "203.0.113.7/32");
  CHECK(source_bucket("::ffff:203.0.113.7", 24, 64) == source_bucket("203.0.113.9", 24, 64));
  // Not every IPv4 client in one /64 bucket (::ffff:0:0/64 holds them all).
  CHECK(source_bucket("::ffff:198.51.100.1", 32, 64) != source_bucket("::ffff:203.0.113.7", 32, 64));
}

TEST_CASE("source_bucket: anything that is not an address is its own bucket") {
  CHECK(source_bucket("unknown", 24, 64) == "unknown");
  CHECK(source_bucket("", 24, 64).empty());
}

TEST_CASE("in_networks: trusted proxies by network, each family apart") {
  using xcg::gateway::in_networks;
  const std::vector<std::string> proxies{"127.0.0.0/8", "::1/128", "192.0.2.10"};
  CHECK(in_networks("127.0.0.1", proxies));
  CHECK(in_networks("127.255.0.9", proxies));
  CHECK(in_networks("::1", proxies));
  CHECK(in_networks("::ffff:127.0.0.1", proxies));
  CHECK(in_networks("192.0.2.10", proxies));
  CHECK_FALSE(in_networks("192.0.2.11", proxies));
  CHECK_FALSE(in_networks("128.0.0.1", proxies));
  CHECK_FALSE(in_networks("::2", proxies));
  CHECK_FALSE(in_networks("127.0.0.1", {}));
}
