// User authentication: floods of every method, malformed requests, channels before login.
#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "tests/badinput/cases.h"
#include "tests/badinput/wire.h"

namespace xcg::badinput {
namespace {

constexpr int kFlood = 5000;
constexpr double kAnswerWithin = 3;  // seconds; the server answers a request in milliseconds

std::string request_head(std::string_view user, std::string_view method) {
  return Writer().byte(msg::userauth_request).string(user).string("ssh-connection").string(method).bytes();
}

std::string rsa_blob() {
  std::string n = random_bytes(384);
  n.front() = static_cast<char>(n.front() | 0x80);
  n.back() = static_cast<char>(n.back() | 1);
  return Writer().string("ssh-rsa").mpint(std::string_view("\x01\x00\x01", 3)).mpint(n).bytes();
}

// Sends `make(i)` one at a time, each after the previous answer, until the server hangs up
// or kFlood requests went out. The server must hang up after at most max_auth_tries refusals.
// `uncounted` refusals may come on top: a client's first "none" request only asks which
// methods exist (OpenSSH's sshd does not count it either).
Outcome lockstep_flood(const Env& env, const std::string& what, unsigned limit,
                       const std::function<std::string(Client&, int)>& make) {
  auto deadline = after(env.login_grace_s + 10);
  auto c = ready_for_auth(env, deadline);
  if (!c) return tl::unexpected(c.error());
  int refused = 0;
  for (int i = 0; i < kFlood; ++i) {
    size_t before = c->auth_answers().size();
    auto sent = c->send_packet(make(*c, i), deadline);
    auto answered = sent ? c->pump_until(std::min(deadline, after(kAnswerWithin)),
                                         [&] { return c->auth_answers().size() > before; })
                         : sent;
    if (!answered && answered.error().code == Errc::timeout)
      return after_silence(*c, env, fmt::format("{} (after {} refusals)", what, refused));
    if (!answered) {
      if (!closed_by_server(answered.error())) return tl::unexpected(answered.error());
      if (refused > static_cast<int>(limit))
        return misbehaved(
            fmt::format("{}: cut off only after {} refusals (the limit is {})", what, refused, limit));
      return fmt::format("{}: cut off after {} refusals ({})", what, refused, answered.error().message);
    }
    uint8_t answer = c->auth_answers().back();
    if (answer == msg::userauth_success) return misbehaved(what + ": the server accepted it");
    if (answer == msg::userauth_failure) ++refused;
  }
  return misbehaved(
      fmt::format("{}: {} requests, {} refusals, and the connection is still open (the limit is {})", what,
                  kFlood, refused, limit));
}

// Keys nobody configured. Key generation failing is the test program's problem: stop.
std::shared_ptr<std::vector<Ed25519Key>> strangers(int n) {
  auto keys = std::make_shared<std::vector<Ed25519Key>>();
  for (int i = 0; i < n; ++i) {
    auto k = Ed25519Key::generate();
    if (!k) throw std::runtime_error(k.error().message);
    keys->push_back(std::move(*k));
  }
  return keys;
}

// All requests go out before any answer is read: the server must still stop early.
Outcome pipelined_flood(const Env& env) {
  auto deadline = after(env.login_grace_s + 10);
  auto c = ready_for_auth(env, deadline);
  if (!c) return tl::unexpected(c.error());
  auto keys = strangers(16);
  for (int i = 0; i < kFlood; ++i) {
    const Ed25519Key& key = (*keys)[static_cast<size_t>(i) % keys->size()];
    if (auto r = c->send_packet(c->publickey_request(env.user, key, false), deadline); !r) {
      if (closed_by_server(r.error()))
        return fmt::format("{} queries sent at once: cut off after {} were sent", kFlood, i);
      return tl::unexpected(r.error());
    }
  }
  auto r = c->pump_until(deadline, [] { return false; });
  if (!closed_by_server(r.error())) return tl::unexpected(r.error());
  size_t answers = c->auth_answers().size();
  if (answers >= static_cast<size_t>(kFlood))
    return misbehaved(fmt::format("{} queries sent at once: all answered before the server hung up", kFlood));
  return fmt::format("{} queries sent at once: cut off after {} answers", kFlood, answers);
}

}  // namespace

std::vector<Case> auth_cases() {
  return {
      {"auth-flood-probes", "5000 public-key queries for strangers' keys on one connection",
       [](const Env& env) {
         auto keys = strangers(64);
         return lockstep_flood(
             env, "unknown-key queries", env.max_key_offers, [keys, &env](Client& c, int i) {
               return c.publickey_request(env.user, (*keys)[static_cast<size_t>(i) % keys->size()], false);
             });
       }},
      {"auth-flood-signed-strangers", "5000 signed logins with strangers' keys",
       [](const Env& env) {
         auto keys = strangers(64);
         return lockstep_flood(
             env, "signed unknown keys", env.max_auth_tries, [keys, &env](Client& c, int i) {
               return c.publickey_request(env.user, (*keys)[static_cast<size_t>(i) % keys->size()], true);
             });
       }},
      {"auth-flood-bad-signatures", "5000 logins with the right key and a wrong signature",
       [](const Env& env) {
         return lockstep_flood(env, "wrong signatures", env.max_auth_tries, [&env](Client&, int) {
           Writer w;
           w.raw(request_head(env.user, "publickey"))
               .boolean(true)
               .string("ssh-ed25519")
               .string(env.key.public_blob());
           w.string(Writer().string("ssh-ed25519").string(random_bytes(64)).bytes());
           return w.bytes();
         });
       }},
      {"auth-flood-other-domains", "5000 signed logins with the right key for other user names",
       [](const Env& env) {
         return lockstep_flood(env, "the key for other domains", env.max_auth_tries,
                               [&env](Client& c, int i) {
                                 return c.publickey_request(fmt::format("dom{}", i), env.key, true);
                               });
       }},
      {"auth-flood-none", "5000 'none' authentication requests",
       [](const Env& env) {
         // The client's first "none" (asking which methods there are) is free, as in OpenSSH.
         return lockstep_flood(env, "'none' requests", env.max_auth_tries + 1,
                               [&env](Client&, int) { return request_head(env.user, "none"); });
       }},
      {"auth-flood-password", "5000 password attempts",
       [](const Env& env) {
         return lockstep_flood(env, "password attempts", env.max_auth_tries, [&env](Client&, int i) {
           return Writer()
               .raw(request_head(env.user, "password"))
               .boolean(false)
               .string(fmt::format("guess{}", i))
               .bytes();
         });
       }},
      {"auth-flood-keyboard-interactive", "5000 keyboard-interactive attempts",
       [](const Env& env) {
         return lockstep_flood(env, "keyboard-interactive attempts", env.max_auth_tries,
                               [&env](Client&, int) {
                                 return Writer()
                                     .raw(request_head(env.user, "keyboard-interactive"))
                                     .string("")
                                     .string("")
                                     .bytes();
                               });
       }},
      {"auth-flood-gssapi", "5000 gssapi-with-mic attempts (Kerberos 5 mechanism)",
       [](const Env& env) {
         const std::string krb5_oid("\x06\x09\x2a\x86\x48\x86\xf7\x12\x01\x02\x02", 11);
         return lockstep_flood(env, "gssapi attempts", env.max_auth_tries, [&env, krb5_oid](Client&, int) {
           return Writer().raw(request_head(env.user, "gssapi-with-mic")).u32(1).string(krb5_oid).bytes();
         });
       }},
      {"auth-flood-sha1-rsa", "5000 public-key queries with the SHA-1 'ssh-rsa' algorithm",
       [](const Env& env) {
         auto blob = std::make_shared<std::string>(rsa_blob());
         return lockstep_flood(env, "ssh-rsa queries", env.max_key_offers, [blob, &env](Client&, int) {
           return Writer()
               .raw(request_head(env.user, "publickey"))
               .boolean(false)
               .string("ssh-rsa")
               .string(*blob)
               .bytes();
         });
       }},
      {"auth-flood-unknown-algorithm", "5000 public-key queries with algorithms the server does not know",
       [](const Env& env) {
         return lockstep_flood(env, "unknown algorithms", env.max_key_offers, [&env](Client&, int i) {
           return Writer()
               .raw(request_head(env.user, "publickey"))
               .boolean(false)
               .string(i % 2 ? "ssh-dss" : "x-bogus@example.com")
               .string(random_bytes(64))
               .bytes();
         });
       }},
      {"auth-flood-pipelined", "5000 public-key queries sent at once without reading",
       [](const Env& env) { return pipelined_flood(env); }},
      {"auth-nul-in-user", "a signed login for 'USER\\0junk' (a user name with a NUL)",
       [](const Env& env) -> Outcome {
         auto deadline = after(10);
         auto c = ready_for_auth(env, deadline);
         if (!c) return tl::unexpected(c.error());
         auto ok = c->auth_publickey(env.user + std::string("\0junk", 5), env.key, after(kAnswerWithin));
         if (!ok && ok.error().code == Errc::timeout) return after_silence(*c, env, "user name with a NUL");
         if (!ok) return closed_or(ok.error(), "user name with a NUL");
         if (!*ok) return std::string("user name with a NUL: refused");
         return status_works(*c, env,
                             "user name with a NUL: libssh cut the name at the NUL and the key matched");
       }},
      {"auth-huge-user", "a signed login for a 200 KiB user name",
       [](const Env& env) -> Outcome {
         auto deadline = after(10);
         auto c = ready_for_auth(env, deadline);
         if (!c) return tl::unexpected(c.error());
         auto ok = c->auth_publickey(std::string(200 * 1024, 'u'), env.key, deadline);
         if (!ok) return closed_or(ok.error(), "200 KiB user name");
         if (*ok) return misbehaved("200 KiB user name: accepted");
         return std::string("200 KiB user name: refused");
       }},
      {"auth-without-service-request", "a signed login without asking for ssh-userauth first",
       [](const Env& env) -> Outcome {
         auto deadline = after(10);
         auto c = connect(env, deadline);
         if (!c) return tl::unexpected(c.error());
         if (auto r = c->handshake(deadline); !r) return tl::unexpected(r.error());
         auto ok = c->auth_publickey(env.user, env.key, after(kAnswerWithin));
         if (!ok && ok.error().code == Errc::timeout)
           return after_silence(*c, env, "login without service request");
         if (!ok) return closed_or(ok.error(), "login without service request");
         if (!*ok) return std::string("login without service request: refused");
         auto r = status_works(*c, env, "login without service request: accepted");
         if (r) return r;
         if (r.error().code != Errc::timeout)
           return closed_or(r.error(), "login without service request: accepted");
         // libssh authenticated the user while its key exchange call was still running, and
         // that call never returns: the session process is stuck until the login grace time.
         return expect_closed(*c, env.login_grace_s + 5,
                              "login without service request: accepted, then no answer");
       }},
      {"unknown-service", "a service request for 'ssh-connection' before authentication",
       [](const Env& env) -> Outcome {
         auto deadline = after(10);
         auto c = connect(env, deadline);
         if (!c) return tl::unexpected(c.error());
         if (auto r = c->handshake(deadline); !r) return tl::unexpected(r.error());
         auto r = c->request_service("ssh-connection", after(kAnswerWithin));
         if (!r) return closed_or_silent(*c, env, r.error(), "service ssh-connection before authentication");
         // Accepting the name is harmless as long as no channel opens before authentication.
         auto channel = c->open_session(after(kAnswerWithin));
         if (channel) return misbehaved("a session channel opened before authentication");
         if (channel.error().code == Errc::not_allowed)
           return std::string(
               "service ssh-connection accepted, but the channel before authentication refused");
         return closed_or_silent(*c, env, channel.error(),
                                 "service ssh-connection accepted, then a channel before authentication");
       }},
      {"channel-before-auth", "a session channel and exec request before authentication",
       [](const Env& env) -> Outcome {
         auto deadline = after(10);
         auto c = ready_for_auth(env, deadline);
         if (!c) return tl::unexpected(c.error());
         auto channel = c->send_open_session(deadline);
         if (!channel) return closed_or(channel.error(), "channel before authentication");
         // Pretend it opened as the server's channel 0 and ask for a reboot on it.
         if (auto r = c->send_request(*channel, "exec", true, Writer().string("reboot").bytes(), deadline);
             !r)
           return closed_or(r.error(), "exec before authentication");
         ChannelState& s = c->channel(*channel);
         auto r = c->pump_until(after(kAnswerWithin),
                                [&] { return s.confirmed || s.refused || s.replies_ok > 0; });
         if (s.confirmed || s.replies_ok > 0)
           return misbehaved("a channel or exec request before authentication was accepted");
         if (s.refused) return std::string("channel before authentication: refused");
         if (!r && r.error().code == Errc::timeout)
           return after_silence(*c, env, "channel before authentication");
         return closed_or(r.error(), "channel before authentication");
       }},
      {"auth-after-success", "more authentication requests after a successful login",
       [](const Env& env) -> Outcome {
         auto deadline = after(10);
         auto c = logged_in(env, deadline);
         if (!c) return tl::unexpected(c.error());
         for (int i = 0; i < 100; ++i) {
           if (auto r = c->send_packet(c->publickey_request("web2", env.key, true), deadline); !r)
             return closed_or(r.error(), "100 more logins after success");
         }
         auto r = status_works(*c, env, "100 more logins after success");
         if (!r && r.error().code == Errc::timeout)
           return misbehaved("100 more logins after success: the connection hung (no answer to anything)");
         if (!r) return closed_or(r.error(), "100 more logins after success");
         return r;
       }},
  };
}

}  // namespace xcg::badinput
