#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "gateway/ipc/ipc.h"

using namespace xcg;
using namespace xcg::gateway;

namespace {

struct Pair {
  UniqueFd a, b;
  Pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) == 0);
    a.reset(fds[0]);
    b.reset(fds[1]);
  }
};

ipc::Message round_trip(const ipc::Message& m) {
  auto decoded = ipc::decode(ipc::encode(m));
  REQUIRE(decoded);
  return *decoded;
}

}  // namespace

TEST_CASE("every message type survives encode and decode") {
  std::vector<ipc::Message> all = {
      ipc::Hello{{"-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n", "second"},
                 true,
                 101,
                 102,
                 "/run/xcg/empty",
                 30,
                 6,
                 40,
                 600},
      ipc::LogRecord{2, "hello"},
      ipc::AuthorizeReq{"web1", "ssh-ed25519", "AAAAC3Nza", true},
      ipc::AuthorizeAns{true, "web1", true, {config::Action::console, config::Action::reboot}, "SHA256:x"},
      ipc::StatusReq{},
      ipc::StatusAns{true, "web1: running"},
      ipc::ActionReq{config::Action::destroy},
      ipc::ActionAns{false, "web1 is not running"},
      ipc::AttachReq{},
      ipc::AttachAns{true, ""},
      ipc::LogReq{250},
      ipc::LogAns{true, "line 1\nline 2\n"},
      ipc::WhoReq{},
      ipc::WhoAns{{"alice@laptop, since 10:02:11 UTC", "bob (read-only), since 10:05:00 UTC"}},
      ipc::SysrqReq{'h'},
      ipc::Revoke{"access to web1 was revoked"},
  };
  for (const auto& m : all) {
    CAPTURE(ipc::type_name(ipc::type_of(m)));
    CHECK(round_trip(m) == m);
  }
}

TEST_CASE("decode rejects malformed frames") {
  std::string good = ipc::encode(ipc::AuthorizeReq{"web1", "ssh-ed25519", "AAAA", false});
  SECTION("empty") { CHECK_FALSE(ipc::decode("")); }
  SECTION("unknown type") { CHECK_FALSE(ipc::decode(std::string(1, '\x63'))); }
  SECTION("unused type number 3") { CHECK_FALSE(ipc::decode(std::string(1, '\x03'))); }
  SECTION("truncated at every length") {
    for (size_t n = 1; n < good.size(); ++n) CHECK_FALSE(ipc::decode(good.substr(0, n)));
  }
  SECTION("trailing bytes") { CHECK_FALSE(ipc::decode(good + "x")); }
  SECTION("string length beyond the frame") {
    std::string bad = good;
    bad[1] = '\x7f';  // first string's length now ~2 GiB
    CHECK_FALSE(ipc::decode(bad));
  }
  SECTION("bad bool") {
    std::string bad = good;
    bad.back() = '\x02';
    CHECK_FALSE(ipc::decode(bad));
  }
  SECTION("bad action value") {
    std::string bad = ipc::encode(ipc::ActionReq{config::Action::start});
    bad[1] = '\x09';
    CHECK_FALSE(ipc::decode(bad));
  }
  SECTION("oversized string") {
    std::string big(ipc::kMaxString + 1, 'a');
    CHECK_FALSE(ipc::decode(ipc::encode(ipc::StatusAns{true, big})));
  }
}

TEST_CASE("a hello from another protocol version is refused with both versions named") {
  std::string frame = ipc::encode(ipc::Hello{});
  REQUIRE(ipc::decode(frame));
  // The version is the hello's first field: u32 big-endian right after the type byte.
  frame[4] = static_cast<char>(ipc::kProtocolVersion + 1);
  auto decoded = ipc::decode(frame);
  REQUIRE_FALSE(decoded);
  CHECK(decoded.error().message ==
        fmt::format("the broker speaks IPC protocol {} and this session program {}: restart xcg after an "
                    "upgrade, so that both come from the same version",
                    ipc::kProtocolVersion + 1, ipc::kProtocolVersion));
  // Shorter than a version: malformed, not a version mismatch.
  auto stub = ipc::decode(std::string(1, '\x01'));
  REQUIRE_FALSE(stub);
  CHECK(stub.error().message == "malformed message");
}

TEST_CASE("send and receive over a socketpair, with a descriptor") {
  Pair p;
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  UniqueFd r(pipe_fds[0]), w(pipe_fds[1]);

  REQUIRE(ipc::send(p.a.get(), ipc::AttachAns{true, ""}, r.get()));
  auto got = ipc::receive(p.b.get());
  REQUIRE(got);
  CHECK(std::get<ipc::AttachAns>(got->message).ok);
  REQUIRE(got->fd.valid());
  // The passed descriptor is the same pipe: what we write arrives there.
  REQUIRE(::write(w.get(), "x", 1) == 1);
  char c = 0;
  CHECK(::read(got->fd.get(), &c, 1) == 1);
  CHECK(c == 'x');
}

TEST_CASE("receive reports a closed peer and rejects oversized packets") {
  SECTION("closed") {
    Pair p;
    p.a.reset();
    auto got = ipc::receive(p.b.get());
    REQUIRE_FALSE(got);
    CHECK(got.error().code == Errc::peer_closed);
  }
  SECTION("oversized") {
    Pair p;
    std::string huge(ipc::kMaxFrame + 100, '\x06');
    REQUIRE(::send(p.a.get(), huge.data(), huge.size(), 0) == static_cast<ssize_t>(huge.size()));
    auto got = ipc::receive(p.b.get());
    REQUIRE_FALSE(got);
    CHECK(got.error().code == Errc::invalid_input);
  }
  SECTION("one byte over the limit") {
    Pair p;
    std::string frame = ipc::encode(ipc::StatusAns{true, std::string(ipc::kMaxString, 'a')});
    frame.resize(ipc::kMaxFrame + 1, 'a');
    REQUIRE(::send(p.a.get(), frame.data(), frame.size(), 0) == static_cast<ssize_t>(frame.size()));
    auto got = ipc::receive(p.b.get());
    REQUIRE_FALSE(got);
    CHECK(got.error().code == Errc::invalid_input);
  }
  SECTION("garbage") {
    Pair p;
    REQUIRE(::send(p.a.get(), "\x04garbage", 8, 0) == 8);
    auto got = ipc::receive(p.b.get());
    REQUIRE_FALSE(got);
    CHECK(got.error().code == Errc::invalid_input);
  }
}

TEST_CASE("a short message after a long one is received as itself") {
  // receive reuses its buffer: the long message's bytes must not leak into the short one.
  Pair p;
  ipc::LogAns long_one{true, std::string(40000, 'x')};
  ipc::LogAns short_one{true, "y"};
  REQUIRE(ipc::send(p.a.get(), long_one));
  REQUIRE(ipc::send(p.a.get(), short_one));
  auto first = ipc::receive(p.b.get());
  REQUIRE(first);
  CHECK(std::get<ipc::LogAns>(first->message) == long_one);
  auto second = ipc::receive(p.b.get());
  REQUIRE(second);
  CHECK(std::get<ipc::LogAns>(second->message) == short_one);
  // A bare type byte decodes only if nothing of the earlier frames is read after it.
  REQUIRE(::send(p.a.get(), "\x06", 1, 0) == 1);
  auto status = ipc::receive(p.b.get());
  REQUIRE(status);
  CHECK(std::holds_alternative<ipc::StatusReq>(status->message));
}

TEST_CASE("the receive buffer keeps the last frame until wiped") {
  // The session wipes it after the hello, whose frame holds the host private keys.
  const std::string marker = "-----BEGIN OPENSSH PRIVATE KEY----- wipe-test";
  ipc::Hello hello;
  hello.host_keys_pem = {marker};
  Pair p;
  REQUIRE(ipc::send(p.a.get(), hello));
  REQUIRE(ipc::receive(p.b.get()));
  auto contains_marker = [&marker] {
    auto buffer = ipc::receive_buffer();
    return std::search(buffer.begin(), buffer.end(), marker.begin(), marker.end()) != buffer.end();
  };
  REQUIRE(contains_marker());
  ipc::wipe_receive_buffer();
  CHECK_FALSE(contains_marker());
  auto buffer = ipc::receive_buffer();
  CHECK(std::all_of(buffer.begin(), buffer.end(), [](char c) { return c == '\0'; }));
}
