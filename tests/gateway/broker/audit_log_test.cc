#include <catch2/catch.hpp>

#include "gateway/broker/audit_log.h"

using xcg::gateway::AuditEvent;
using xcg::gateway::format_audit_line;
using xcg::gateway::json_escape;

TEST_CASE("audit lines are one JSON object with the required fields") {
  AuditEvent e{"action", "127.0.0.1:5555", "web1", "SHA256:abc", {{"action", "reboot"}, {"result", "ok"}}};
  CHECK(format_audit_line(e, "2026-11-25T10:00:00.000Z") ==
        R"({"time":"2026-11-25T10:00:00.000Z","event":"action","remote":"127.0.0.1:5555",)"
        R"("domain":"web1","fingerprint":"SHA256:abc","action":"reboot","result":"ok"})"
        "\n");
}

TEST_CASE("attacker-chosen text cannot break the line or the JSON") {
  CHECK(json_escape("a\"b\\c") == R"(a\"b\\c)");
  CHECK(json_escape("line\nbreak\r\x01") == R"(line\u000abreak\u000d\u0001)");
  CHECK(json_escape("caf\xc3\xa9") == "caf\xc3\xa9");  // valid UTF-8 stays
  CHECK(json_escape("bad\xff") == R"(bad\ufffd)");     // invalid UTF-8 is replaced
  CHECK(json_escape("\xc3") == R"(\ufffd)");           // truncated sequence
  AuditEvent e{"auth_failure", "r", "evil\n{\"event\":\"x\"}", "", {}};
  std::string line = format_audit_line(e, "t");
  CHECK(line.find('\n') == line.size() - 1);
}
