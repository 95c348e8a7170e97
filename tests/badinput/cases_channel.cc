// After authentication: pty and exec requests with absurd contents, window-change storms,
// channel churn, messages for channels that do not exist, garbage.
#include <fmt/format.h>

#include "tests/badinput/cases.h"
#include "tests/badinput/wire.h"

namespace xcg::badinput {
namespace {

std::string pty_request(std::string_view term, uint32_t cols, uint32_t rows, uint32_t width_px,
                        uint32_t height_px, std::string_view modes) {
  return Writer().string(term).u32(cols).u32(rows).u32(width_px).u32(height_px).string(modes).bytes();
}

std::string window_change(uint32_t cols, uint32_t rows, uint32_t width_px, uint32_t height_px) {
  return Writer().u32(cols).u32(rows).u32(width_px).u32(height_px).bytes();
}

// Sends one pty-req with `type_specific` on a fresh channel; whatever the answer, the channel
// must still run `status` afterwards (a refused request leaves the channel usable).
Outcome pty_then_status(const Env& env, const std::string& type_specific, const std::string& what) {
  auto deadline = after(15);
  auto c = logged_in(env, deadline);
  if (!c) return tl::unexpected(c.error());
  auto channel = c->open_session(deadline);
  if (!channel) return tl::unexpected(channel.error());
  if (auto r = c->send_request(*channel, "pty-req", true, type_specific, deadline); !r)
    return closed_or(r.error(), what);
  ChannelState& s = c->channel(*channel);
  auto answered = c->pump_until(after(3), [&] { return s.replies_ok + s.replies_failed > 0; });
  if (!answered && answered.error().code != Errc::timeout) return closed_or(answered.error(), what);
  std::string how = !answered ? ": no answer" : s.replies_ok ? ": accepted" : ": refused";
  auto r = status_works_on(*c, *channel, env, what + how);
  if (!r && r.error().code == Errc::timeout) return misbehaved(what + how + ", and the connection hung");
  if (!r) return closed_or(r.error(), what + how);
  return r;
}

struct ExecResult {
  ChannelState channel;
  std::string ended;  // non-empty: the server closed the connection instead of answering
};

Result<ExecResult> run_exec(const Env& env, std::string_view command) {
  auto deadline = after(15);
  auto c = logged_in(env, deadline);
  if (!c) return tl::unexpected(c.error());
  auto id = c->exec(command, deadline);
  if (!id) {
    if (closed_by_server(id.error())) return ExecResult{{}, id.error().message};
    if (id.error().code == Errc::timeout)
      return misbehaved("no answer to the exec request: the connection hung");
    return tl::unexpected(id.error());
  }
  return ExecResult{c->channel(*id), {}};
}

bool has_control_bytes(std::string_view text) {
  for (unsigned char ch : text)
    if ((ch < 0x20 && ch != '\n') || ch == 0x7f) return true;
  return false;
}

// The command must be refused with exit status 2 and one clean line on stderr: nothing ran.
Outcome refused_command(const Env& env, std::string_view command, const std::string& what) {
  auto r = run_exec(env, command);
  if (!r) return tl::unexpected(r.error());
  if (!r->ended.empty()) return fmt::format("{}: the server ended the connection ({})", what, r->ended);
  const ChannelState& s = r->channel;
  if (s.exit_status != 2u || !s.out.empty() || !s.err.starts_with("xcg: ") || has_control_bytes(s.err) ||
      s.err.find('\n') != s.err.size() - 1)
    return misbehaved(fmt::format("{}: exit {} out '{}' err '{}'", what,
                                  s.exit_status ? static_cast<long>(*s.exit_status) : -1L, printable(s.out),
                                  printable(s.err)));
  return fmt::format("{}: refused, exit 2: {}", what, printable(s.err, 80));
}

Outcome metacharacters(const Env& env) {
  const std::vector<std::string> commands = {
      "status; reboot",
      "status && reboot",
      "status || reboot",
      "status | reboot",
      "$(reboot)",
      "`reboot`",
      "status\nreboot",
      "status\r\nreboot",
      "reboot #",
      "/bin/sh -c reboot",
      "../../../bin/sh",
      "status > /tmp/x",
      "*",
      "~root",
      "%s%s%s%n",
      "'reboot'",
      "\"reboot\"",
      "re\\boot",
      "REBOOT",
      "reboot now",
  };
  for (const auto& command : commands) {
    auto r = refused_command(env, command, printable(command));
    if (!r) return r;
  }
  return fmt::format("{} commands with shell metacharacters: each refused with exit 2", commands.size());
}

Outcome attached_console(Client& c, uint32_t channel, Deadline deadline) {
  ChannelState& s = c.channel(channel);
  if (auto r = c.pump_until(deadline,
                            [&] { return s.out.find("Ctrl-] detaches") != std::string::npos || s.closed; });
      !r)
    return tl::unexpected(r.error());
  if (s.closed) return misbehaved("the console closed at once: " + printable(s.err));
  return std::string();
}

// After attaching: a CR must bring the guest's prompt (login: or the shell's) back.
Outcome console_answers(Client& c, uint32_t channel, Deadline deadline, const std::string& what) {
  ChannelState& s = c.channel(channel);
  size_t seen = s.out.size();
  if (auto r = c.send_data(channel, "\r", deadline); !r) return tl::unexpected(r.error());
  auto prompt = [&] {
    std::string_view fresh = std::string_view(s.out).substr(seen);
    return fresh.find("login: ") != std::string_view::npos || fresh.find(":~# ") != std::string_view::npos;
  };
  if (auto r = c.pump_until(deadline, [&] { return prompt() || s.closed; }); !r)
    return tl::unexpected(r.error());
  if (!prompt()) return misbehaved(what + ": the console closed");
  return what + "; the console still answers";
}

Outcome window_change_storm(const Env& env, bool attached) {
  auto deadline = after(30);
  auto c = logged_in(env, deadline);
  if (!c) return tl::unexpected(c.error());
  auto channel = c->open_session(deadline);
  if (!channel) return tl::unexpected(channel.error());
  if (attached) {
    if (auto r =
            c->send_request(*channel, "pty-req", false, pty_request("xterm", 80, 24, 0, 0, ""), deadline);
        !r)
      return tl::unexpected(r.error());
    if (auto r = c->send_request(*channel, "exec", false, Writer().string("console").bytes(), deadline); !r)
      return tl::unexpected(r.error());
    if (auto r = attached_console(*c, *channel, deadline); !r) return r;
  }
  constexpr int kStorm = 20000;
  for (int i = 0; i < kStorm; ++i) {
    uint32_t v = i % 4 == 0 ? 0xffffffffu : i % 4 == 1 ? 0 : random_u32();
    if (auto r = c->send_request(*channel, "window-change", false, window_change(v, v, v, v), deadline); !r)
      return closed_or(r.error(), "window-change storm");
  }
  std::string what =
      fmt::format("{} window-change requests{}", kStorm, attached ? " while attached" : " before exec");
  if (attached) return console_answers(*c, *channel, deadline, what);
  return status_works_on(*c, *channel, env, what);
}

Outcome channel_churn(const Env& env) {
  auto deadline = after(30);
  auto c = logged_in(env, deadline);
  if (!c) return tl::unexpected(c.error());
  constexpr int kCycles = 3000;
  int opened = 0;
  int refused = 0;
  for (int i = 0; i < kCycles; ++i) {
    auto id = c->open_session(deadline);
    if (!id && id.error().code == Errc::not_allowed) {
      ++refused;
      continue;
    }
    if (!id)
      return closed_or(id.error(), fmt::format("channel churn: {} opened, {} refused", opened, refused));
    ++opened;
    ChannelState& s = c->channel(*id);
    if (auto r = c->send_close(*id, deadline); !r) return closed_or(r.error(), "channel churn");
    if (auto r = c->pump_until(deadline, [&] { return s.closed; }); !r)
      return closed_or(r.error(),
                       fmt::format("channel churn: {} opened and closed, {} refused", opened, refused));
  }
  return fmt::format("channel churn: {} opened and closed, {} refused; connection still open", opened,
                     refused);
}

Outcome channel_open_flood(const Env& env) {
  auto deadline = after(30);
  auto c = logged_in(env, deadline);
  if (!c) return tl::unexpected(c.error());
  constexpr int kOpens = 3000;
  std::vector<uint32_t> ids;
  for (int i = 0; i < kOpens; ++i) {
    auto id = c->send_open_session(deadline);
    if (!id) return closed_or(id.error(), "channel open flood");
    ids.push_back(*id);
  }
  auto answered = [&] {
    for (auto id : ids)
      if (!c->channel(id).confirmed && !c->channel(id).refused) return false;
    return true;
  };
  if (auto r = c->pump_until(deadline, answered); !r) return closed_or(r.error(), "channel open flood");
  int confirmed = 0;
  for (auto id : ids) confirmed += c->channel(id).confirmed;
  if (confirmed != 1)
    return misbehaved(fmt::format("channel open flood: {} session channels confirmed, want 1", confirmed));
  return status_works_on(*c, ids.front(), env,
                         fmt::format("{} session channel opens: one confirmed, the rest refused", kOpens));
}

Outcome bogus_channel_ids(const Env& env) {
  auto deadline = after(15);
  auto c = logged_in(env, deadline);
  if (!c) return tl::unexpected(c.error());
  auto channel = c->open_session(deadline);
  if (!channel) return tl::unexpected(channel.error());
  uint32_t real = c->channel(*channel).remote;
  for (uint32_t bogus : {real + 1, real + 2, real + 1000, 0xffffffffu, real ^ 0x80000000u}) {
    const std::string id = Writer().u32(bogus).bytes();
    const std::vector<std::string> packets = {
        Writer().byte(msg::channel_data).raw(id).string("hello").bytes(),
        Writer().byte(msg::channel_extended_data).raw(id).u32(1).string("hello").bytes(),
        Writer().byte(msg::channel_window_adjust).raw(id).u32(0xffffffffu).bytes(),
        Writer().byte(msg::channel_request).raw(id).string("exec").boolean(true).string("reboot").bytes(),
        Writer().byte(msg::channel_eof).raw(id).bytes(),
        Writer().byte(msg::channel_close).raw(id).bytes(),
        Writer().byte(msg::channel_success).raw(id).bytes(),
        Writer().byte(msg::channel_open_confirmation).raw(id).u32(7).u32(1000).u32(1000).bytes(),
    };
    for (const auto& p : packets) {
      if (auto r = c->send_packet(p, deadline); !r)
        return closed_or(r.error(), "messages for channels that do not exist");
    }
  }
  auto r = status_works_on(*c, *channel, env, "messages for channels that do not exist were ignored");
  if (!r) return closed_or(r.error(), "messages for channels that do not exist");
  return r;
}

Outcome window_adjust_overflow(const Env& env) {
  auto deadline = after(15);
  auto c = logged_in(env, deadline);
  if (!c) return tl::unexpected(c.error());
  auto channel = c->open_session(deadline);
  if (!channel) return tl::unexpected(channel.error());
  const std::string adjust =
      Writer().byte(msg::channel_window_adjust).u32(c->channel(*channel).remote).u32(0xffffffffu).bytes();
  for (int i = 0; i < 3; ++i) {
    if (auto r = c->send_packet(adjust, deadline); !r) return closed_or(r.error(), "window adjust overflow");
  }
  auto r = status_works_on(*c, *channel, env, "three window adjusts of 2^32-1");
  if (!r) return closed_or(r.error(), "three window adjusts of 2^32-1");
  return r;
}

Outcome global_request_flood(const Env& env) {
  auto deadline = after(20);
  auto c = logged_in(env, deadline);
  if (!c) return tl::unexpected(c.error());
  for (int i = 0; i < 2000; ++i) {
    Writer w;
    w.byte(msg::global_request);
    if (i % 2) w.string("tcpip-forward").boolean(true).string("0.0.0.0").u32(static_cast<uint32_t>(1024 + i));
    else w.string("keepalive@openssh.com").boolean(true);
    if (auto r = c->send_packet(w.bytes(), deadline); !r) return closed_or(r.error(), "2000 global requests");
  }
  return status_works(*c, env, "2000 global requests (tcpip-forward, keepalive)");
}

Outcome garbage_after_auth(const Env& env) {
  auto deadline = after(15);
  auto c = logged_in(env, deadline);
  if (!c) return tl::unexpected(c.error());
  // Every message type in turn, each with a random body; DISCONNECT is a polite way out,
  // not garbage.
  for (int type = 0; type < 256; ++type) {
    if (type == msg::disconnect) continue;
    std::string payload =
        Writer().byte(static_cast<uint8_t>(type)).raw(random_bytes(random_u32() % 256)).bytes();
    if (auto r = c->send_packet(payload, deadline); !r)
      return closed_or(r.error(), fmt::format("random bodies for message types 0..{}", type));
  }
  const std::string what = "random bodies for every message type after login";
  auto r = status_works(*c, env, what);
  if (!r && r.error().code == Errc::timeout) return misbehaved(what + ": the connection hung");
  if (!r) return closed_or(r.error(), what);
  return r;
}

Outcome raw_garbage_attached(const Env& env) {
  auto deadline = after(15);
  auto c = logged_in(env, deadline);
  if (!c) return tl::unexpected(c.error());
  auto channel = c->open_session(deadline);
  if (!channel) return tl::unexpected(channel.error());
  if (auto r = c->send_request(*channel, "exec", false, Writer().string("console").bytes(), deadline); !r)
    return tl::unexpected(r.error());
  if (auto r = attached_console(*c, *channel, deadline); !r) return r;
  // A packet of plausible length whose contents and tag are random: what a corrupted or
  // forged stream looks like once keys are in use.
  std::string forged = Writer().u32(64).bytes() + random_bytes(64 + 16);
  if (auto r = c->send_raw(forged, deadline); !r && !closed_by_server(r.error()))
    return tl::unexpected(r.error());
  return expect_closed(*c, 5, "a forged packet (wrong tag) while attached");
}

}  // namespace

std::vector<Case> channel_cases() {
  return {
      {"pty-negative-size", "pty-req with every size 2^32-1 (negative as int)",
       [](const Env& env) {
         return pty_then_status(env,
                                pty_request("xterm", 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, ""),
                                "pty-req of 2^32-1 columns and rows");
       }},
      {"pty-huge-size", "pty-req with 1000000 x 1000000 characters",
       [](const Env& env) {
         return pty_then_status(env, pty_request("xterm", 1000000, 1000000, 0x7fffffff, 0x7fffffff, ""),
                                "pty-req of 10^6 x 10^6");
       }},
      {"pty-zero-size", "pty-req with 0 x 0",
       [](const Env& env) {
         return pty_then_status(env, pty_request("xterm", 0, 0, 0, 0, ""), "pty-req of 0 x 0");
       }},
      {"pty-garbage-modes", "pty-req with 32 KiB of random terminal modes",
       [](const Env& env) {
         return pty_then_status(env, pty_request("xterm", 80, 24, 0, 0, random_bytes(32 * 1024)),
                                "32 KiB of random modes");
       }},
      {"pty-truncated-modes", "pty-req whose modes end inside an opcode's argument",
       [](const Env& env) {
         return pty_then_status(env, pty_request("xterm", 80, 24, 0, 0, std::string("\x01\x00\x00", 3)),
                                "truncated modes");
       }},
      {"pty-huge-term", "pty-req with a 128 KiB TERM with control bytes",
       [](const Env& env) {
         std::string term(128 * 1024, 'x');
         term[5] = '\0';
         term[6] = '\x1b';
         return pty_then_status(env, pty_request(term, 80, 24, 0, 0, ""), "128 KiB TERM");
       }},
      {"pty-truncated-request", "pty-req that ends after TERM",
       [](const Env& env) {
         return pty_then_status(env, Writer().string("xterm").bytes(), "pty-req without sizes");
       }},
      {"exec-1mib", "exec with a 1 MiB command",
       [](const Env& env) -> Outcome {
         std::string command = "reboot";
         while (command.size() < 1024 * 1024) command += " ;reboot";
         auto r = run_exec(env, command);
         if (!r) return tl::unexpected(r.error());
         if (!r->ended.empty()) return "1 MiB command: the server ended the connection (" + r->ended + ")";
         if (r->channel.exit_status == 0u) return misbehaved("1 MiB command: exit 0");
         return fmt::format("1 MiB command: refused, exit {}: {}", r->channel.exit_status.value_or(999),
                            printable(r->channel.err, 80));
       }},
      {"exec-200kib", "exec with a 200 KiB command that starts with a valid one",
       [](const Env& env) {
         return refused_command(env, "reboot" + std::string(200 * 1024, ' ') + "x", "200 KiB command");
       }},
      {"exec-nul", "exec 'status\\0; reboot' (a NUL inside the command)",
       [](const Env& env) -> Outcome {
         auto r = run_exec(env, std::string("status\0; reboot", 15));
         if (!r) return tl::unexpected(r.error());
         if (!r->ended.empty())
           return "command with a NUL: the server ended the connection (" + r->ended + ")";
         const ChannelState& s = r->channel;
         if (s.exit_status == 0u && s.out.starts_with(env.user + ": ") &&
             s.out.find("reboot") == std::string::npos)
           return std::string(
               "command with a NUL: libssh cut it at the NUL and 'status' ran; nothing after the NUL ran");
         if (s.exit_status == 2u) return "command with a NUL: refused: " + printable(s.err, 80);
         return misbehaved(fmt::format("command with a NUL: exit {} out '{}' err '{}'",
                                       s.exit_status.value_or(999), printable(s.out), printable(s.err)));
       }},
      {"exec-metacharacters", "exec with shell metacharacters, one connection each",
       [](const Env& env) { return metacharacters(env); }},
      {"exec-control-bytes", "exec with terminal escape sequences (echoed in the refusal)",
       [](const Env& env) {
         return refused_command(env, "\x1b]0;owned\x07\x1b[2Jstatus\x1b[0m\x08\x08", "escape sequences");
       }},
      {"exec-empty", "exec with an empty command",
       [](const Env& env) { return refused_command(env, "", "empty command"); }},
      {"window-change-storm", "20000 window-change requests with absurd sizes while attached to the console",
       [](const Env& env) { return window_change_storm(env, true); }},
      {"window-change-before-exec", "20000 window-change requests before any pty or exec",
       [](const Env& env) { return window_change_storm(env, false); }},
      {"channel-churn", "a session channel opened and closed 3000 times on one connection",
       [](const Env& env) { return channel_churn(env); }},
      {"channel-open-flood", "3000 session channel opens without waiting",
       [](const Env& env) { return channel_open_flood(env); }},
      {"bogus-channel-ids", "data, requests, EOF and CLOSE for channels that do not exist",
       [](const Env& env) { return bogus_channel_ids(env); }},
      {"window-adjust-overflow", "window adjusts that overflow 32 bits",
       [](const Env& env) { return window_adjust_overflow(env); }},
      {"global-request-flood", "2000 global requests wanting replies",
       [](const Env& env) { return global_request_flood(env); }},
      {"garbage-after-auth", "an encrypted message of every type with a random body after login",
       [](const Env& env) { return garbage_after_auth(env); }},
      {"raw-garbage-attached", "a forged packet (random contents, wrong tag) while attached to the console",
       [](const Env& env) { return raw_garbage_attached(env); }},
  };
}

}  // namespace xcg::badinput
