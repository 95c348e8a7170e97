// The wire format of every message, pinned: encode and decode both follow each message's one
// field list, so these tests catch a field list that changed the bytes on the wire.
#include <algorithm>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <catch2/catch.hpp>

#include "gateway/ipc/ipc.h"

using namespace xcg;
using namespace xcg::gateway;
using namespace std::string_literals;
using config::Action;

namespace {

// Every field away from its default. Hello's protocol stays: decode refuses another version.
std::vector<ipc::Message> one_of_each_with_every_field_set() {
  return {
      ipc::Hello{{"key one", "key two"},
                 true,
                 101,
                 102,
                 "/run/xcg/empty",
                 31,
                 7,
                 41,
                 600,
                 ipc::kProtocolVersion,
                 "chain",
                 "key",
                 "https://console.example",
                 true,
                 true,
                 true},
      ipc::LogRecord{4, "a record"},
      ipc::AuthorizeReq{"web1", "ssh-ed25519", "AAAAC3Nza", true},
      ipc::AuthorizeAns{true, "web1", true, {Action::sysrq, Action::destroy}, "SHA256:x", true},
      ipc::StatusReq{},
      ipc::StatusAns{true, "web1: running"},
      ipc::ActionReq{Action::shutdown},
      ipc::ActionAns{true, "done"},
      ipc::AttachReq{},
      ipc::AttachAns{true, "attached"},
      ipc::LogReq{70000},
      ipc::LogAns{true, "line 1\nline 2\n"},
      ipc::WhoReq{},
      ipc::WhoAns{{"alice@laptop, since 10:02:11 UTC", "bob"}},
      ipc::SysrqReq{'z'},
      ipc::Revoke{"access to web1 was revoked"},
      ipc::Narrowed{true, true, "your access to web1 is now read-only"},
      ipc::WebAuthorizeReq{"v1~web1~r~1~n~m", "192.0.2.7", "Mozilla/5.0"},
      ipc::WeblinkReq{},
      ipc::WeblinkAns{true, "https://console.example/#token"},
      ipc::NodeConnectReq{},
      ipc::NodeConnectReq{"node-a"},
      ipc::Revoke{"web1 moved to node-b", true},
      ipc::NodeConnectAns{true, "connected", "node-b", "SHA256:abc"},
      ipc::MetricsReq{},
      ipc::MetricsAns{"xcg_logins_total{kind=\"ssh\"} 1\n"},
      ipc::FrontKey{{"-----BEGIN OPENSSH PRIVATE KEY-----", "second"}},
  };
}

}  // namespace

TEST_CASE("every message type round-trips with every field set", "[ipc]") {
  auto all = one_of_each_with_every_field_set();
  std::vector<bool> seen(std::variant_size_v<ipc::Message>);
  for (const auto& m : all) {
    CAPTURE(ipc::type_name(ipc::type_of(m)));
    seen[m.index()] = true;
    auto decoded = ipc::decode(ipc::encode(m));
    REQUIRE(decoded);
    CHECK(*decoded == m);
  }
  CHECK(std::count(seen.begin(), seen.end(), false) == 0);
}

TEST_CASE("messages encode to the bytes the protocol has always used", "[ipc]") {
  struct Case {
    ipc::Message message;
    std::string bytes;
  };
  const Case cases[] = {
      {ipc::Hello{{"k1", "k2"}, true, 101, 102, "/e", 30, 6, 40, 600},
       "\x01\x00\x00\x00\x07\x00\x00\x00\x02\x00\x00\x00\x02\x6b\x31\x00\x00\x00\x02\x6b\x32\x01\x00\x00\x00\x65\x00\x00\x00\x66\x00\x00\x00\x02\x2f\x65\x00\x00\x00\x1e\x00\x00\x00\x06\x00\x00\x00\x28\x00\x00\x02\x58\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"s},
      {ipc::Hello{{}, false, 0, 0, "", 0, 0, 0, 0, ipc::kProtocolVersion, "", "", "", false, true, true},
       "\x01\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01"s},
      {ipc::AuthorizeReq{"web1", "ssh-ed25519", "AAAA", true},
       "\x04\x00\x00\x00\x04\x77\x65\x62\x31\x00\x00\x00\x0b\x73\x73\x68\x2d\x65\x64\x32\x35\x35\x31\x39\x00\x00\x00\x04\x41\x41\x41\x41\x01"s},
      {ipc::AuthorizeAns{true, "web1", true, {Action::console, Action::sysrq}, "SHA256:x", true},
       "\x05\x01\x00\x00\x00\x04\x77\x65\x62\x31\x01\x00\x00\x00\x02\x00\x05\x00\x00\x00\x08\x53\x48\x41\x32\x35\x36\x3a\x78\x01"s},
      {ipc::ActionReq{Action::reboot}, "\x08\x03"s},
      {ipc::LogReq{0x01020304}, "\x0c\x01\x02\x03\x04"s},
      {ipc::WhoAns{{"a", "bc"}}, "\x0f\x00\x00\x00\x02\x00\x00\x00\x01\x61\x00\x00\x00\x02\x62\x63"s},
      {ipc::SysrqReq{'h'}, "\x10\x68"s},
      {ipc::StatusReq{}, "\x06"s},
      {ipc::LogRecord{3, "hi"}, "\x02\x03\x00\x00\x00\x02\x68\x69"s},
      {ipc::Narrowed{true, false, "ro"}, "\x13\x01\x00\x00\x00\x00\x02\x72\x6f"s},
      {ipc::WebAuthorizeReq{"t", "", "u"}, "\x14\x00\x00\x00\x01\x74\x00\x00\x00\x00\x00\x00\x00\x01\x75"s},
      {ipc::WeblinkAns{false, "no"}, "\x17\x00\x00\x00\x00\x02\x6e\x6f"s},
      {ipc::NodeConnectReq{}, "\x18\x00\x00\x00\x00"s},
      {ipc::NodeConnectReq{"na"}, "\x18\x00\x00\x00\x02\x6e\x61"s},
      {ipc::Revoke{"x", true}, "\x11\x00\x00\x00\x01\x78\x01"s},
      {ipc::NodeConnectAns{true, "", "nb", "SHA256:x"},
       "\x19\x01\x00\x00\x00\x00\x00\x00\x00\x02\x6e\x62\x00\x00\x00\x08\x53\x48\x41\x32\x35\x36\x3a\x78"s},
      {ipc::MetricsReq{}, "\x1a"s},
      {ipc::MetricsAns{"m 1\n"}, "\x1b\x00\x00\x00\x04\x6d\x20\x31\x0a"s},
      {ipc::FrontKey{{"k"}}, "\x1d\x00\x00\x00\x01\x00\x00\x00\x01\x6b"s},
  };
  for (const auto& c : cases) {
    CAPTURE(ipc::type_name(ipc::type_of(c.message)));
    CHECK(ipc::encode(c.message) == c.bytes);
    auto decoded = ipc::decode(c.bytes);
    REQUIRE(decoded);
    CHECK(*decoded == c.message);
  }
}

TEST_CASE("type numbers and names are the protocol's", "[ipc]") {
  CHECK(static_cast<int>(ipc::type_of_v<ipc::Hello>) == 1);
  CHECK(static_cast<int>(ipc::type_of_v<ipc::Revoke>) == 17);
  CHECK(static_cast<int>(ipc::type_of_v<ipc::Narrowed>) == 19);
  CHECK(static_cast<int>(ipc::type_of_v<ipc::WebAuthorizeReq>) == 20);
  CHECK(static_cast<int>(ipc::type_of_v<ipc::WeblinkAns>) == 23);
  CHECK(static_cast<int>(ipc::type_of_v<ipc::NodeConnectReq>) == 24);
  CHECK(static_cast<int>(ipc::type_of_v<ipc::NodeConnectAns>) == 25);
  CHECK(static_cast<int>(ipc::type_of_v<ipc::MetricsReq>) == 26);
  CHECK(static_cast<int>(ipc::type_of_v<ipc::MetricsAns>) == 27);
  CHECK(static_cast<int>(ipc::type_of_v<ipc::FrontKey>) == 29);
  CHECK(ipc::type_name(ipc::Type::node_connect_ans) == "node_connect_ans");
  CHECK(ipc::type_name(ipc::Type::metrics_req) == "metrics_req");
  CHECK(ipc::type_name(ipc::Type::authorize_req) == "authorize_req");
  CHECK(ipc::type_name(ipc::Type::who_ans) == "who_ans");
  CHECK(ipc::type_name(static_cast<ipc::Type>(3)) == "unknown");
  CHECK(ipc::type_name(static_cast<ipc::Type>(99)) == "unknown");
}
