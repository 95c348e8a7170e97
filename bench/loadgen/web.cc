// Browser-protocol modes (xcg-web's `xcg.v1`, docs/web.md), links on stdin, one per line:
//   webecho   keystroke round trips on one web viewer (the first link), as `echo` over SSH
//   webhold   opens one viewer per link line and keeps it; `report` prints what opened so
//             far, `quit` (or end of input) closes them all
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/loadgen/options.h"
#include "bench/loadgen/stats.h"
#include "bench/loadgen/websocket.h"

namespace xcg::bench {
namespace {

constexpr auto kQuiet = std::chrono::milliseconds(300);
constexpr auto kKeystrokeTimeout = std::chrono::seconds(5);

bool is_data(const Frame& f) { return f.opcode == 0x2 || f.opcode == 0x0; }

// A logged-in viewer: the token sent, `hello` seen, and the first replay frame if `replay`.
std::unique_ptr<WebSocket> log_in(const std::string& url, const Options& o, bool replay) {
  auto link = parse_web_link(url);
  if (!link) throw std::runtime_error("not a link: " + url);
  auto ws = std::make_unique<WebSocket>(*link, std::chrono::seconds(o.timeout_s));
  auto deadline = Clock::now() + std::chrono::seconds(o.timeout_s);
  if (!ws->send_text(link->token)) throw std::runtime_error("token: " + ws->error());
  auto hello = ws->read(deadline);
  if (!hello || hello->opcode != 0x1 || !hello->payload.starts_with("hello "))
    throw std::runtime_error("no hello: " + (hello ? hello->payload : ws->error()));
  for (;;) {
    if (!replay) return ws;
    auto f = ws->read(deadline);
    if (!f || f->opcode == 0x8) throw std::runtime_error("no replay: " + (f ? f->payload : ws->error()));
    if (is_data(*f)) return ws;
  }
}

// Reads until nothing has come for kQuiet (the replay's end), at most 3 s.
void drain(WebSocket& ws) {
  auto end = Clock::now() + std::chrono::seconds(3);
  while (Clock::now() < end && ws.read(std::min(end, Clock::now() + kQuiet))) {
  }
}

// Reads frames until the newest output ends with `expect`; false on timeout or close.
bool wait_echo(WebSocket& ws, std::string_view expect) {
  auto deadline = Clock::now() + kKeystrokeTimeout;
  std::string tail;
  while (!tail.ends_with(expect)) {
    auto f = ws.read(deadline);
    if (!f || f->opcode == 0x8) return false;
    if (!is_data(*f)) continue;
    tail += f->payload;
    if (tail.size() > 64) tail.erase(0, tail.size() - 64);
  }
  return true;
}

}  // namespace

int run_web_echo(const Options& o) {
  std::string url;
  if (!std::getline(std::cin, url)) throw std::runtime_error("webecho: no link on stdin");
  auto ws = log_in(url, o, false);
  drain(*ws);
  Samples rtt;
  int lost = 0;
  bool broken = false;
  for (unsigned k = 0; k < o.keystrokes && !broken; ++k) {
    bool letter = k % 2 == 0;  // a letter, then DEL, as the SSH echo
    auto t0 = Clock::now();
    broken = !ws->send_binary(letter ? "x" : "\x7f");
    if (!broken && wait_echo(*ws, letter ? "x" : "\b \b")) rtt.add(ms_between(t0, Clock::now()));
    else ++lost;
  }
  Json j;
  j.str("mode", "webecho").integer("keystrokes", o.keystrokes).integer("lost", lost);
  j.str("error", lost ? ws->error() : "");  // drain's quiet wait leaves a "timeout" behind
  j.stats("rtt_ms", rtt);
  std::printf("%s\n", j.text().c_str());
  return 0;
}

namespace {

// The viewers `webhold` keeps open, and what opening them took.
struct Viewers {
  std::vector<std::unique_ptr<WebSocket>> open;
  std::map<std::string, int> failures;  // by the first words of the error
  Samples login_ms;
  int failed = 0;

  void add(const std::string& url, const Options& o) {
    auto t0 = Clock::now();
    try {
      open.push_back(log_in(url, o, true));
      login_ms.add(ms_between(t0, Clock::now()));
    } catch (const std::exception& e) {
      ++failed;
      ++failures[std::string(e.what()).substr(0, 60)];
    }
  }

  void report() const {
    Json j;
    j.str("mode", "webhold").integer("attached", static_cast<int64_t>(open.size())).integer("failed", failed);
    j.stats("login_ms", login_ms).counts("failures", failures);
    std::printf("%s\n", j.text().c_str());
    std::fflush(stdout);
  }
};

}  // namespace

int run_web_hold(const Options& o) {
  Viewers viewers;
  for (std::string line; std::getline(std::cin, line) && line != "quit";) {
    if (line == "report") viewers.report();
    else viewers.add(line, o);
  }
  return 0;
}

}  // namespace xcg::bench
