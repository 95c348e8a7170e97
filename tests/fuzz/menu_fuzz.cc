// menu::Menu driven like a session drives it: arbitrary keystrokes in arbitrary chunks, each
// request answered, and a console log of arbitrary bytes. Checks that what the menu writes to
// the customer's terminal is plain text (printable ASCII and tabs, CRLF line ends, its own
// clear-screen sequence, at most one bell per feed) and that it asks only for what the key
// allows.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "menu/menu.h"
#include "tests/fuzz/fuzz_check.h"

using namespace xcg;
using menu::Menu;
using menu::Request;

namespace {

constexpr std::string_view kClearScreen = "\x1b[H\x1b[2J";
constexpr std::string_view kStatus = "web1: running, domid 3, 512 MiB, 1 vCPU, up 0:01:02";

void check_output(const std::string& out) {
  int bells = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    char c = out[i];
    if (out.compare(i, kClearScreen.size(), kClearScreen) == 0) {
      i += kClearScreen.size() - 1;
    } else if (c == '\r') {
      FUZZ_CHECK(i + 1 < out.size() && out[i + 1] == '\n');
    } else if (c == '\n') {
      FUZZ_CHECK(i > 0 && out[i - 1] == '\r');
    } else if (c == '\a') {
      FUZZ_CHECK(++bells <= 1);
    } else {
      FUZZ_CHECK(c == '\t' || (c >= 0x20 && c <= 0x7e));  // tabs: the console log keeps its layout
    }
  }
}

void check_request(const Request& r, const std::vector<config::Action>& allowed, bool readonly) {
  if (r.kind == Request::Kind::action) {
    FUZZ_CHECK(!readonly && config::allows(allowed, r.action));
  } else if (r.kind == Request::Kind::attach_console) {
    FUZZ_CHECK(config::allows(allowed, config::Action::console));
  } else if (r.kind == Request::Kind::sysrq) {
    FUZZ_CHECK(!readonly && config::allows(allowed, config::Action::sysrq));
    FUZZ_CHECK(r.key == 0 || config::valid_sysrq_key(r.key));
  }
}

// Answers `r` as the session would; false when the session ends.
bool answer(Menu& m, const Request& r, bool ok, std::string_view console_log) {
  switch (r.kind) {
    case Request::Kind::none: return true;
    case Request::Kind::status: m.show_status(kStatus); return true;
    case Request::Kind::action: m.action_done(r.action, ok, "done", kStatus); return true;
    case Request::Kind::sysrq: m.action_done(config::Action::sysrq, ok, "sent", kStatus); return true;
    case Request::Kind::log: m.show_log(console_log, kStatus); return true;
    case Request::Kind::attach_console:
      if (ok) m.console_detached(kStatus);
      else m.attach_failed("no console", kStatus);
      return true;
    case Request::Kind::exit: return false;
  }
  return false;
}

}  // namespace

// data[0]: bits 0-5 the allowed actions, bit 6 read-only, bit 7 whether requests succeed.
// Then chunks: a length byte (1..8) and that many keystrokes. The whole input is also the
// console log the log item shows.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::vector<config::Action> allowed;
  for (int i = 0; i < 6; ++i)
    if (data[0] & (1 << i)) allowed.push_back(config::kAllActions[i]);
  bool readonly = data[0] & 0x40, ok = data[0] & 0x80;
  std::string_view all(reinterpret_cast<const char*>(data), size);
  Menu m("web1", allowed, readonly);
  m.show_status(kStatus);
  check_output(m.take_output());
  for (size_t at = 1; at < size;) {
    size_t len = std::min<size_t>(data[at] % 8 + 1, size - at - 1);
    std::string_view keys = all.substr(at + 1, len);
    at += 1 + len;
    Request r = m.feed(keys);
    check_output(m.take_output());
    check_request(r, allowed, readonly);
    if (!answer(m, r, ok, all)) break;
    check_output(m.take_output());
  }
  return 0;
}
