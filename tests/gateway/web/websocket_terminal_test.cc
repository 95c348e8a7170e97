#include "gateway/web/websocket_terminal.h"

#include <catch2/catch.hpp>

using namespace xcg::gateway::web;
using xcg::gateway::Stream;

TEST_CASE("close reasons are cut to 123 bytes at a UTF-8 boundary", "[web]") {
  CHECK(cut_utf8("short", 123) == "short");
  std::string ascii(200, 'a');
  CHECK(cut_utf8(ascii, 123).size() == 123);
  std::string euros;
  for (int i = 0; i < 50; ++i) euros += "\xE2\x82\xAC";  // 3 bytes each
  CHECK(cut_utf8(euros, 123).size() == 123);             // 41 whole ones
  CHECK(cut_utf8("a" + euros, 123).size() == 121);       // 1 + 40: the 41st would be split
  CHECK(close_frame(0, "").code == 1000);
  CHECK(close_frame(0, "idle for 600 s").code == 1000);
  auto revoked = close_frame(1, "access to web1 was revoked");
  CHECK(revoked.code == 1008);
  CHECK(revoked.reason == "access to web1 was revoked");
}

TEST_CASE("the terminal queues at most 256 KiB of output, in order with text frames", "[web]") {
  WebSocketTerminal t;
  CHECK(*t.write(Stream::out, "abc") == 3);
  t.send_text("status running");
  CHECK(*t.write(Stream::err, "def") == 3);
  std::string big(kMaxQueuedOutput, 'x');
  CHECK(*t.write(Stream::out, big) == kMaxQueuedOutput - 6);
  CHECK(*t.write(Stream::out, "more") == 0);
  auto first = t.take_frame();
  REQUIRE(first);
  CHECK(first->binary);
  CHECK(first->bytes == "abc");
  CHECK(t.take_frame()->bytes == "status running");
  auto third = t.take_frame();
  CHECK(third->bytes.size() == 16 * 1024);  // merged, in frames of at most 16 KiB
  CHECK(third->bytes.starts_with("defxxx"));
  CHECK(*t.write(Stream::out, "more") > 0);  // room again once frames were taken
  t.end(1, "revoked");
  REQUIRE(t.close());
  CHECK(t.close()->code == 1008);
  t.gone();
  CHECK_FALSE(t.write(Stream::out, "x"));
}
