#include <fmt/format.h>

#include "tests/badinput/cases.h"
#include "tests/badinput/wire.h"

namespace xcg::badinput {

tl::unexpected<Error> misbehaved(std::string why) { return fail(Errc::wrong_state, std::move(why)); }

Result<Client> connect(const Env& env, Deadline deadline) { return Client::connect(env.port, deadline); }

Result<Client> ready_for_auth(const Env& env, Deadline deadline) {
  auto c = connect(env, deadline);
  if (!c) return c;
  if (auto r = c->handshake(deadline); !r) return tl::unexpected(r.error());
  if (auto r = c->request_service("ssh-userauth", deadline); !r) return tl::unexpected(r.error());
  return c;
}

Result<Client> logged_in(const Env& env, Deadline deadline) {
  auto c = ready_for_auth(env, deadline);
  if (!c) return c;
  auto ok = c->auth_publickey(env.user, env.key, deadline);
  if (!ok) return tl::unexpected(ok.error());
  if (!*ok) return misbehaved("the right key was refused");
  return c;
}

Outcome expect_closed(Client& c, double seconds, const std::string& what) {
  auto started = Clock::now();
  if (auto r = c.wait_closed(after(seconds)); !r)
    return misbehaved(fmt::format("{}: {} after {:.0f} s", what, r.error().message, seconds));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  return fmt::format("{}: the server closed the connection within {} ms", what, ms);
}

Outcome status_works_on(Client& c, uint32_t channel, const Env& env, const std::string& what) {
  auto deadline = after(10);
  if (auto r = c.send_request(channel, "exec", true, Writer().string("status").bytes(), deadline); !r)
    return tl::unexpected(r.error());
  ChannelState& s = c.channel(channel);
  if (auto r = c.pump_until(deadline, [&] { return s.closed; }); !r) return tl::unexpected(r.error());
  if (s.exit_status != 0u || !s.out.starts_with(env.user + ": "))
    return misbehaved(fmt::format("{}; then status gave exit {} out '{}' err '{}'", what,
                                  s.exit_status ? static_cast<long>(*s.exit_status) : -1L, printable(s.out),
                                  printable(s.err)));
  return what + "; the connection still runs status";
}

Outcome status_works(Client& c, const Env& env, const std::string& what) {
  auto channel = c.open_session(after(10));
  if (!channel) return tl::unexpected(channel.error());
  return status_works_on(c, *channel, env, what);
}

Outcome after_silence(Client& c, const Env& env, const std::string& what) {
  auto ok = c.auth_publickey(env.user, env.key, after(5));
  // A close that only came with the login grace time is the hang, ended from outside.
  if (!ok && closed_by_server(ok.error()) && c.age() >= env.login_grace_s - 1)
    return misbehaved(fmt::format("{}: no answer; the connection hung until the login grace time ({:.0f} s)",
                                  what, c.age()));
  if (!ok && closed_by_server(ok.error()))
    return fmt::format("{}: no answer, then the server closed the connection", what);
  if (!ok && ok.error().code == Errc::timeout)
    return misbehaved(what + ": no answer, and the connection hung: no answer to a valid login either");
  if (!ok) return tl::unexpected(ok.error());
  if (!*ok) return misbehaved(what + ": no answer, then the right key was refused");
  return what + ": no answer (dropped silently); the right key still logs in";
}

Outcome closed_or_silent(Client& c, const Env& env, const Error& e, const std::string& what) {
  if (e.code == Errc::timeout) return after_silence(c, env, what);
  return closed_or(e, what);
}

Outcome closed_or(const Error& e, const std::string& what) {
  if (closed_by_server(e)) return fmt::format("{}; the server ended the connection ({})", what, e.message);
  return tl::unexpected(e);
}

}  // namespace xcg::badinput
