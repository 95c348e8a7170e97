#include "config/summary.h"

#include <catch2/catch.hpp>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "config/config.h"
#include "tests/config/samples.h"

namespace xcg::config {
namespace {

using namespace xcg::config::samples;

using Lines = std::vector<std::string>;

const std::string kAliceNoComment = kAlice.substr(0, kAlice.rfind(' '));
const std::string kErin =
    "ssh-rsa "
    "AAAAB3NzaC1yc2EAAAADAQABAAABAQC1MeT9ZK7G2wpkR0w0qHt3pGPrjTyol7r08/LIiOOvzJowrR88kOhTyGkk"
    "dG2sQrgvQ87aGNSQ43rT4Rfbb0EGm08MkpDETa6WPZ3sYzYBGvIWtQmtKza3TuuzkxFx0cVS0IM1Ta4NnLN59an3GusaR0"
    "In9fLsdc595vr4qZbu+xq1bMOfJPhdz7YBnZmWPQ34DNGJajmnMhDub4ng/DnYTxYS+ThEXIARMUwfS/"
    "tZ9PxLZq+LOjfsX5b2E7NPidRdgP5cS8Y2VzUianZiOXpWYq9whUqcfp7ZRTEEXONsfMOg/"
    "hInv8dEdwUgXnHYK2HS/sY+GDKWUOcVxEwIC8v3 erin@rsa2048";
const std::string kErinFingerprint = "SHA256:WzyHBYSwNlqEf1LU947vDP+128RUgsD0jyPg9ScEOBw";
const std::string kGina =
    "ssh-rsa "
    "AAAAB3NzaC1yc2EAAAADAQABAAABgQDKekgE6QD53cSpA66jC/THySGwIeOklGogTRyLBWp3TAdc8F2XILkNV/"
    "eKmFF42S7b7MIg/HcmgEZmxzyS4V/jd6nWU663evEVOVohU6S5cdWFgqTjDZ+gvYqXYSnvmeR9Mt0ayJj/"
    "RGIF2eqY9qIL4cKpuw5EYc1Q4EXr/usCVVmtym+RQvUFOtZytF+4vx+IuWSK9XJcsic+6w6lX+"
    "W9mXKBTzckDziMqewmUc9xGLTouqKgaofpnEYw3UZgj6DRuUuhVtC0jcFYktKnjwm/lEtXH3NaiCErTK9/"
    "6GH004E2GLUeU5UoaowbIljFUtnlJuKbk1gXMtlhT0P+wY73Nxq19o1UILK7jyJE6cFl0s7vSswYnr3SEVb/"
    "qR9abBj1kRjMLFH22gb3N15PeVD7uNxN0cdv5y/ACMGfBAGqLsFEFLqIYesquVjMYbdhkH9dK+"
    "WLJC0T1oGwLRdHdENJzNaYE2cZ2yqIRna2qjxB6VtOiQ1DaDkevdF2HXFWkD0= gina@rsa3072";

const std::string kHead =
    "listen: [\"127.0.0.1:2222\"]\n"
    "host_keys: [/etc/xcg/host_key]\n"
    "hypervisor: sim\n"
    "domains:\n";

Summary summary_of_text(const std::string& domains) {
  return summary_of(*parse_config(kHead + domains, "t.yaml"));
}

Lines warning_lines(const Summary& s) {
  Lines out;
  for (const auto& w : s.warnings) out.push_back(warning_line(w));
  return out;
}

TEST_CASE("summary: counts domains, keys, read-only keys and files") {
  auto s = summary_of_text("  web1:\n    keys:\n      - " + kAlice + "\n      - {key: \"" + kBob +
                           "\", readonly: true}\n"
                           "  web2:\n    keys:\n      - key: " +
                           kGina +
                           "\n        readonly: true\n"
                           "  db:\n    keys: [\"" +
                           kErin + "\"]\n");
  CHECK(s.domains == 3);
  CHECK(s.keys == 4);
  CHECK(s.readonly_keys == 2);
  CHECK(s.files == 1);
  CHECK(s.counts() == "3 domains, 4 keys (2 read-only), 1 file");
}

TEST_CASE("summary: counts say singular and plural, read-only only when there are some") {
  Summary s;
  CHECK(s.counts() == "0 domains, 0 keys, 0 files");
  s.domains = 1;
  s.keys = 1;
  s.files = 4;
  CHECK(s.counts() == "1 domain, 1 key, 4 files");
  s.keys = 7;
  s.readonly_keys = 1;
  CHECK(s.counts() == "1 domain, 7 keys (1 read-only), 4 files");
}

TEST_CASE("summary: a clean config has no warnings") {
  auto s = summary_of_text("  web1:\n    keys:\n      - " + kAlice + "\n      - " + kGina +
                           "\n    actions: [console]\n");
  CHECK(s.warnings.empty());
  CHECK(s.str() == "1 domain, 2 keys, 1 file\n");
}

TEST_CASE("summary: a domain with no keys") {
  auto s = summary_of_text("  web1:\n    keys: [\"" + kAlice +
                           "\"]\n  spare: {}\n  empty:\n"
                           "    keys: []\n");
  CHECK(warning_lines(s) ==
        Lines{"t.yaml:7:3: warning: domain 'spare' has no keys: nobody can log in to it",
              "t.yaml:8:3: warning: domain 'empty' has no keys: nobody can log in to it"});
}

TEST_CASE("summary: with cluster, keys are in etcd and the cluster is described") {
  auto node = summary_of(*parse_config(kHead +
                                           "  web1: {}\ncluster: {node: dom0-a, endpoints: "
                                           "['http://127.0.0.1:2379', 'https://e2:2379']}\nfronts: ['" +
                                           kBob + "']\n",
                                       "t.yaml"));
  CHECK(node.warnings.empty());
  CHECK(node.str() ==
        "1 domain, 0 keys, 1 file\ncluster: node 'dom0-a' (advertised as 127.0.0.1:2222), prefix /xcg/, etcd "
        "at "
        "http://127.0.0.1:2379, https://e2:2379; 1 front\n");
  auto front =
      summary_of(*parse_config("listen: ['127.0.0.1:2222']\nhost_keys: [/k]\ncluster: {role: front, "
                               "node: f1, endpoints: ['http://127.0.0.1:2379']}\n",
                               "t.yaml"));
  CHECK(front.cluster == "cluster: front 'f1', prefix /xcg/, etcd at http://127.0.0.1:2379");
}

TEST_CASE("summary: with cluster, keys written in the file are said to be unused") {
  auto s = summary_of(*parse_config(
      kHead + "  web1:\n    keys: ['" + kAlice + "']\ncluster: {endpoints: ['http://127.0.0.1:2379']}\n",
      "t.yaml"));
  CHECK(warning_lines(s) == Lines{"t.yaml:5:3: warning: domain 'web1' lists keys, which are not used: with "
                                  "cluster: a domain's keys are etcd's (xcg keys import puts them there)"});
}

TEST_CASE("summary: an RSA key under 3072 bits is weak") {
  auto s = summary_of_text("  web1:\n    keys:\n      - " + kGina + "\n      - " + kErin + "\n");
  CHECK(warning_lines(s) ==
        Lines{"t.yaml:8:9: warning: key " + kErinFingerprint +
              " (erin@rsa2048) of domain 'web1' is a weak 2048-bit RSA key: use 3072 bits or "
              "more, or ssh-ed25519"});
}

TEST_CASE("summary: the weak-RSA line is at 3072 bits, and only for RSA") {
  auto with_key = [](std::string type, unsigned bits) {
    Config c;
    Domain& d = c.domains["web1"];
    d.name = "web1";
    d.actions = {Action::console};
    d.keys.push_back(DomainKey{PublicKey{std::move(type), "blob", "someone", bits}, {}, false});
    return summary_of(c).warnings.size();
  };
  CHECK(with_key("ssh-rsa", 3071) == 1);
  CHECK(with_key("ssh-rsa", 3072) == 0);
  CHECK(with_key("ssh-ed25519", 256) == 0);
  CHECK(with_key("ecdsa-sha2-nistp256", 256) == 0);
}

TEST_CASE("summary: a key without a comment") {
  auto s = summary_of_text("  web1:\n    keys:\n      - " + kAliceNoComment + "\n      - {key: \"" + kBob +
                           "\", readonly: true}\n");
  CHECK(warning_lines(s) == Lines{"t.yaml:7:9: warning: key " + kAliceFingerprint +
                                  " of domain 'web1' has no comment saying whose it is"});
}

TEST_CASE("summary: a domain whose actions are empty") {
  auto s = summary_of_text("  web1:\n    actions: []\n    keys: [\"" + kAlice + "\"]\n");
  CHECK(warning_lines(s) ==
        Lines{"t.yaml:5:3: warning: domain 'web1' allows no actions: its users can log in but "
              "neither see its console nor start or stop it"});
}

TEST_CASE("summary: warnings in file order, after the counts, and without a position if none") {
  auto c = parse_config(kHead + "  zz: {actions: []}\n  aa:\n    keys:\n      - " + kErin + "\n      - " +
                            kAliceNoComment + "\n",
                        "t.yaml");
  auto s = summary_of(*c);
  Lines expected{
      "t.yaml:5:3: warning: domain 'zz' has no keys: nobody can log in to it",
      "t.yaml:5:3: warning: domain 'zz' allows no actions: its users can log in but neither see "
      "its console nor start or stop it",
      "t.yaml:8:9: warning: key " + kErinFingerprint +
          " (erin@rsa2048) of domain 'aa' is a weak 2048-bit RSA key: use 3072 bits or more, or "
          "ssh-ed25519",
      "t.yaml:9:9: warning: key " + kAliceFingerprint + " of domain 'aa' has no comment saying whose it is"};
  CHECK(warning_lines(s) == expected);
  std::string text = "2 domains, 2 keys, 1 file\n";
  for (const auto& l : expected) text += l + "\n";
  CHECK(summarize(*c) == text);
  CHECK(s.str() == text);

  CHECK(warning_line(Problem{{}, "something"}) == "warning: something");
}

TEST_CASE("summary: warnings in included files follow the main file's") {
  Config c;
  c.path = "main.yaml";
  c.source_files = {"/etc/main.yaml", "/etc/d/a.yaml", "/etc/d/b.yaml"};
  for (auto [name, file, line] : {std::tuple("b", "/etc/d/b.yaml", 2), std::tuple("a", "/etc/d/a.yaml", 9),
                                  std::tuple("m", "main.yaml", 30)}) {
    Domain& d = c.domains[name];
    d.name = name;
    d.where = Location{file, line, 3};
    d.actions = {Action::console};
  }
  auto s = summary_of(c);
  REQUIRE(s.warnings.size() == 3);
  CHECK(s.warnings[0].where.str() == "main.yaml:30:3");
  CHECK(s.warnings[1].where.str() == "/etc/d/a.yaml:9:3");
  CHECK(s.warnings[2].where.str() == "/etc/d/b.yaml:2:3");
  CHECK(s.counts() == "3 domains, 0 keys, 3 files");
}

}  // namespace
}  // namespace xcg::config
