// The `cluster:` section and `fronts:`: what a good one reads as, and the message for each
// thing refused, for a node and for a front.
#include "config/cluster_section.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <climits>
#include <string>
#include <vector>

#include "config/config.h"
#include "tests/config/samples.h"

namespace xcg::config {
namespace {

using Lines = std::vector<std::string>;
using samples::kAlice;
using samples::kBob;

// A node's required fields on lines 1 to 4, "cluster:" on line 5 and `lines` from line 6 on,
// each indented by two spaces.
std::string with_cluster(const Lines& lines) {
  std::string out =
      "listen: ['127.0.0.1:2222']\nhost_keys: [/etc/xcg/host_key]\nhypervisor: sim\n"
      "domains: {web1: {}}\ncluster:\n";
  for (const auto& l : lines) out += "  " + l + "\n";
  return out;
}

Lines problems(const Lines& cluster) { return samples::problems(with_cluster(cluster)); }

const std::string kEndpoints = "endpoints: ['https://etcd1.example:2379', 'http://127.0.0.1:2379']";

// A front's file: listen and host_keys, then `more` lines from line 5 on.
std::string front(const Lines& more) {
  std::string out =
      "listen: ['127.0.0.1:2222']\nhost_keys: [/etc/xcg/host_key]\ncluster: {role: front, endpoints: "
      "['http://127.0.0.1:2379']}\n# more\n";
  for (const auto& l : more) out += l + "\n";
  return out;
}

std::string host_name() {
  char name[HOST_NAME_MAX + 1] = {};
  REQUIRE(::gethostname(name, sizeof name - 1) == 0);
  return name;
}

TEST_CASE("a full cluster section reads into ClusterSettings", "[config][cluster]") {
  auto c = parse_config(
      with_cluster({"role: node", "node: dom0-a.example", kEndpoints, "ca_file: /etc/xcg/etcd-ca.pem",
                    "cert_file: /etc/xcg/etcd.crt", "key_file: /etc/xcg/etcd.key", "prefix: /fleet1/",
                    "lease_ttl: 10s", "advertise: 'dom0-a.example:22'"}),
      "t.yaml");
  REQUIRE(c->cluster);
  const auto& k = *c->cluster;
  CHECK(k.role == ClusterRole::node);
  CHECK(!c->is_front());
  CHECK(k.node == "dom0-a.example");
  CHECK(k.endpoints == Lines{"https://etcd1.example:2379", "http://127.0.0.1:2379"});
  CHECK(k.ca_file == "/etc/xcg/etcd-ca.pem");
  CHECK(k.cert_file == "/etc/xcg/etcd.crt");
  CHECK(k.key_file == "/etc/xcg/etcd.key");
  CHECK(k.prefix == "/fleet1/");
  CHECK(k.lease_ttl_s == 10);
  CHECK(k.advertise == "dom0-a.example:22");
}

TEST_CASE("cluster's defaults, and no section at all", "[config][cluster]") {
  auto c = parse_config(with_cluster({kEndpoints}), "t.yaml");
  REQUIRE(c->cluster);
  CHECK(c->cluster->role == ClusterRole::node);
  CHECK(c->cluster->node == host_name());
  CHECK(c->cluster->prefix == "/xcg/");
  CHECK(c->cluster->lease_ttl_s == 5);
  CHECK(c->cluster->advertise == "127.0.0.1:2222");
  CHECK(c->cluster->ca_file.empty());
  CHECK((c->cluster->cert_file.empty() && c->cluster->key_file.empty()));
  auto none =
      parse_config("listen: ['127.0.0.1:2222']\nhost_keys: [/k]\nhypervisor: sim\ndomains: {}\n", "t.yaml");
  CHECK(!none->cluster);
  CHECK(none->fronts.empty());
}

TEST_CASE("cluster needs endpoints, and both halves of the client pair", "[config][cluster]") {
  CHECK(problems({"prefix: /x/"}) == Lines{"t.yaml:6:3: missing required field 'endpoints'"});
  CHECK(problems({"endpoints: []"}) == Lines{"t.yaml:6:14: endpoints: must list at least one item"});
  CHECK(problems({kEndpoints, "cert_file: /c"}) ==
        Lines{"t.yaml:7:14: cert_file: needs key_file too (the client certificate's private key)"});
  CHECK(problems({kEndpoints, "key_file: /k"}) ==
        Lines{"t.yaml:7:13: key_file: needs cert_file too (the client certificate)"});
  CHECK(problems({kEndpoints, "ca_file: ca.pem"}) ==
        Lines{"t.yaml:7:12: ca_file: must be an absolute path, got 'ca.pem'"});
  CHECK(
      problems({kEndpoints, "rol: front"}) ==
      Lines{"t.yaml:7:3: unknown field 'rol': expected role, node, endpoints, ca_file, cert_file, key_file, "
            "prefix, lease_ttl or advertise"});
}

TEST_CASE("cluster's endpoints are https://, or http:// on loopback, with a port", "[config][cluster]") {
  CHECK(problems({"endpoints: ['http://etcd1.example:2379']"}) ==
        Lines{"t.yaml:6:15: endpoints: 'http://etcd1.example:2379': http:// only on loopback (localhost, "
              "127.0.0.0/8 or [::1]); use https://"});
  CHECK(problems({"endpoints: ['https://etcd1.example']"}) ==
        Lines{"t.yaml:6:15: endpoints: 'https://etcd1.example': expected https://HOST:PORT, with the port "
              "(etcd's is 2379)"});
  CHECK(problems({"endpoints: ['etcd1:2379']"}) ==
        Lines{"t.yaml:6:15: endpoints: 'etcd1:2379': expected https://HOST[:PORT]"});
  CHECK(parse_endpoint("http://[::1]:2379") == "http://[::1]:2379");
  CHECK(parse_endpoint("HTTPS://Etcd.Example:443") == "https://etcd.example:443");
  CHECK(parse_endpoint("http://localhost:2379") == "http://localhost:2379");
}

TEST_CASE("cluster's role, node, prefix, lease and advertise are checked", "[config][cluster]") {
  CHECK(problems({kEndpoints, "role: proxy"}) ==
        Lines{"t.yaml:7:9: role: expected 'node' or 'front', got 'proxy'"});
  CHECK(problems({kEndpoints, "node: 'a b'"}) ==
        Lines{"t.yaml:7:9: node: bad node name 'a b': expected 1 to 64 letters, digits, '_', '.' or '-', "
              "starting with a letter or digit"});
  CHECK(problems({kEndpoints, "prefix: xcg/"}) ==
        Lines{"t.yaml:7:11: prefix: must start and end with '/', like /xcg/, got 'xcg/'"});
  CHECK(problems({kEndpoints, "prefix: /xcg"}).size() == 1);
  CHECK(problems({kEndpoints, "lease_ttl: 1"}) ==
        Lines{"t.yaml:7:14: lease_ttl: expected a duration from 2 to 60 seconds, got '1'"});
  CHECK(problems({kEndpoints, "lease_ttl: 2m"}).size() == 1);
  CHECK(problems({kEndpoints, "advertise: dom0-a"}) ==
        Lines{"t.yaml:7:14: advertise: 'dom0-a': expected HOST:PORT or [IPV6]:PORT, the address fronts reach "
              "this node's SSH at"});
  CHECK(parse_advertise("[2001:DB8::1]:22") == "[2001:db8::1]:22");
  CHECK(!parse_advertise("dom0-a:22/x"));
}

TEST_CASE("a node's fronts are key lines, each its own", "[config][cluster]") {
  auto c = parse_config(with_cluster({kEndpoints}) + "fronts: ['" + kBob + "']\n", "t.yaml");
  REQUIRE(c->fronts.size() == 1);
  CHECK(c->fronts[0].key.fingerprint() == samples::kBobFingerprint);
  CHECK(c->front_for_key(c->fronts[0].key.blob) == &c->fronts[0]);
  CHECK(c->domain_for_key(c->fronts[0].key.blob) == nullptr);
  CHECK(samples::problems(with_cluster({kEndpoints}) + "fronts: ['" + kBob + "', '" + kBob +
                          "', 'ssh-foo AAAA']\n") ==
        Lines{"t.yaml:7:" + std::to_string(14 + kBob.size()) + ": fronts: key " + samples::kBobFingerprint +
                  " is listed twice (first at t.yaml:7:10)",
              "t.yaml:7:" + std::to_string(18 + 2 * kBob.size()) +
                  ": fronts: bad public key: unknown key type 'ssh-foo'"});
  auto shared = "listen: ['127.0.0.1:2222']\nhost_keys: [/k]\nhypervisor: sim\ndomains: {web1: {keys: ['" +
                kAlice + "']}}\nfronts: ['" + kAlice + "']\n";
  CHECK(samples::problems(shared) ==
        Lines{"t.yaml:5:10: fronts: key " + samples::kAliceFingerprint +
              " is also a key of domain 'web1'; a front needs a key of its own"});
}

TEST_CASE("a front needs no hypervisor and has no domains or fronts", "[config][cluster]") {
  auto c = parse_config(front({}), "t.yaml");
  CHECK(c->is_front());
  CHECK(c->domains.empty());
  CHECK(
      samples::problems(front({"domains: {web1: {}}", "include: ['x/*.yaml']", "fronts: []"})) ==
      Lines{"t.yaml:5:1: domains: not allowed with cluster role 'front': a front has no domains of its own; "
            "it learns them and their keys from etcd",
            "t.yaml:6:1: include: not allowed with cluster role 'front': a front has no domains of its own; "
            "it learns them and their keys from etcd",
            "t.yaml:7:1: fronts: not allowed with cluster role 'front': only a node trusts fronts"});
  CHECK(samples::problems("listen: ['127.0.0.1:2222']\nhost_keys: [/k]\ncluster: {endpoints: "
                          "['http://127.0.0.1:2379']}\n") ==
        Lines{"t.yaml:1:1: missing required field 'hypervisor'",
              "t.yaml:1:1: missing required field 'domains'"});
}

TEST_CASE("cluster_file_problems names the files that cannot be read", "[config][cluster]") {
  ClusterSettings k;
  CHECK(cluster_file_problems(k).empty());
  k.ca_file = "/nonexistent/ca.pem";
  k.cert_file = "/dev/null";
  auto found = cluster_file_problems(k);
  REQUIRE(found.size() == 2);
  CHECK(found[0].starts_with("ca_file: "));
  CHECK(found[1].starts_with("cert_file: "));
}

}  // namespace
}  // namespace xcg::config
