// The client vanishing in the middle of every phase. Each case only gets to its phase and
// drops the connection; test_badinput.py then checks that the session process went away and
// everything else carries on.
#include <sys/socket.h>

#include <fmt/format.h>

#include "tests/badinput/cases.h"
#include "tests/badinput/wire.h"

namespace xcg::badinput {
namespace {

enum class Phase {
  connected,
  banner_read,
  versions,
  kexinit,
  ecdh_sent,
  newkeys,
  service,
  probe_sent,
  signature_sent,
  authenticated,
  channel_open,
  pty,
  exec_sent,
  menu,
  attached,
};

enum class How { fin, reset };

// Runs the protocol up to `phase`, or fails if the server does not get there.
Result<Client> reach(const Env& env, Phase phase, Deadline deadline) {
  auto c = connect(env, deadline);
  if (!c || phase == Phase::connected) return c;
  auto step = [&](Result<void> r) { return r ? Result<Client>(std::move(*c)) : tl::unexpected(r.error()); };
  if (phase == Phase::banner_read) return step(c->read_version(deadline));
  if (auto r = c->send_version(deadline); !r) return tl::unexpected(r.error());
  if (auto r = c->read_version(deadline); !r || phase == Phase::versions) return step(r);
  if (auto r = c->send_kexinit({}, deadline); !r) return tl::unexpected(r.error());
  if (auto r = c->read_kexinit(deadline); !r || phase == Phase::kexinit) return step(r);
  if (auto r = c->send_ecdh_init(deadline); !r || phase == Phase::ecdh_sent) return step(r);
  if (auto r = c->finish_kex(deadline); !r || phase == Phase::newkeys) return step(r);
  if (auto r = c->request_service("ssh-userauth", deadline); !r || phase == Phase::service) return step(r);
  if (phase == Phase::probe_sent)
    return step(c->send_packet(c->publickey_request(env.user, env.key, false), deadline));
  if (phase == Phase::signature_sent)
    return step(c->send_packet(c->publickey_request(env.user, env.key, true), deadline));
  auto ok = c->auth_publickey(env.user, env.key, deadline);
  if (!ok) return tl::unexpected(ok.error());
  if (!*ok) return misbehaved("the right key was refused");
  if (phase == Phase::authenticated) return c;
  auto channel = c->open_session(deadline);
  if (!channel) return tl::unexpected(channel.error());
  if (phase == Phase::channel_open) return c;
  std::string pty = Writer().string("xterm").u32(80).u32(24).u32(0).u32(0).string("").bytes();
  if (phase == Phase::pty) return step(c->send_request(*channel, "pty-req", true, pty, deadline));
  if (phase == Phase::exec_sent)
    return step(c->send_request(*channel, "exec", true, Writer().string("status").bytes(), deadline));
  ChannelState& s = c->channel(*channel);
  if (phase == Phase::menu) {
    if (auto r = c->send_request(*channel, "pty-req", false, pty, deadline); !r)
      return tl::unexpected(r.error());
    if (auto r = c->send_request(*channel, "shell", false, "", deadline); !r)
      return tl::unexpected(r.error());
    return step(
        c->pump_until(deadline, [&] { return s.out.find("Choice") != std::string::npos || s.closed; }));
  }
  if (auto r = c->send_request(*channel, "exec", false, Writer().string("console").bytes(), deadline); !r)
    return tl::unexpected(r.error());
  return step(c->pump_until(deadline,
                            [&] { return s.out.find("Ctrl-] detaches") != std::string::npos || s.closed; }));
}

Outcome drop(const Env& env, Phase phase, How how, const std::string& what) {
  auto c = reach(env, phase, after(10));
  if (!c) return tl::unexpected(c.error());
  if (how == How::reset) c->reset();
  else c->close();
  return fmt::format("dropped ({}) {}", how == How::reset ? "TCP reset" : "FIN", what);
}

Outcome half_close_attached(const Env& env) {
  auto c = reach(env, Phase::attached, after(10));
  if (!c) return tl::unexpected(c.error());
  if (::shutdown(c->fd(), SHUT_WR) != 0) return fail_errno("shutdown");
  return expect_closed(*c, 10, "TCP half-close while attached");
}

// A viewer that asks for a lot of output and then stops reading before it leaves.
Outcome unread_output(const Env& env) {
  auto deadline = after(10);
  auto c = reach(env, Phase::attached, deadline);
  if (!c) return tl::unexpected(c.error());
  // The command is harmless whether the guest sits at its login prompt or its shell.
  if (auto r = c->send_data(0, "seq 200000\r", deadline); !r) return tl::unexpected(r.error());
  c->reset();
  return std::string("asked the guest for 1.3 MB of output, read none of it, then reset the connection");
}

}  // namespace

std::vector<Case> disconnect_cases() {
  struct Drop {
    const char* name;
    Phase phase;
    How how;
    const char* what;
  };
  const Drop drops[] = {
      {"drop-after-connect", Phase::connected, How::fin, "right after connecting"},
      {"drop-after-banner", Phase::banner_read, How::fin, "after reading the server's version line"},
      {"drop-after-version", Phase::versions, How::fin, "after the version exchange"},
      {"drop-after-kexinit", Phase::kexinit, How::fin, "after the KEXINIT exchange"},
      {"drop-mid-kex", Phase::ecdh_sent, How::fin, "after sending the curve25519 value, before the reply"},
      {"reset-mid-kex", Phase::ecdh_sent, How::reset, "after sending the curve25519 value, before the reply"},
      {"drop-after-kex", Phase::newkeys, How::fin, "after NEWKEYS"},
      {"drop-after-service", Phase::service, How::fin, "after ssh-userauth was accepted"},
      {"drop-mid-auth-probe", Phase::probe_sent, How::fin, "after a key query, before the answer"},
      {"drop-mid-auth-signed", Phase::signature_sent, How::fin, "after a signed login, before the answer"},
      {"drop-after-auth", Phase::authenticated, How::fin, "after logging in"},
      {"drop-after-channel-open", Phase::channel_open, How::fin, "after opening a session channel"},
      {"drop-after-pty", Phase::pty, How::fin, "after a pty request"},
      {"drop-mid-exec", Phase::exec_sent, How::fin, "after 'exec status', before its output"},
      {"drop-in-menu", Phase::menu, How::fin, "while the menu waits for a choice"},
      {"drop-while-attached", Phase::attached, How::fin, "while attached to the console"},
      {"reset-while-attached", Phase::attached, How::reset, "while attached to the console"},
  };
  std::vector<Case> cases;
  for (const auto& d : drops) {
    cases.push_back({d.name, std::string(d.how == How::reset ? "TCP reset " : "disconnect ") + d.what,
                     [d](const Env& env) { return drop(env, d.phase, d.how, d.what); }});
  }
  cases.push_back({"half-close-while-attached", "TCP half-close (shutdown SHUT_WR) while attached",
                   [](const Env& env) { return half_close_attached(env); }});
  cases.push_back({"drop-with-unread-output", "ask the guest for 1.3 MB of output, never read it, reset",
                   [](const Env& env) { return unread_output(env); }});
  return cases;
}

}  // namespace xcg::badinput
