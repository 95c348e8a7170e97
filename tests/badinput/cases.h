// The bad inputs: each case does one hostile thing to a live gateway and checks what the
// gateway must do about it on that connection. What every case must leave intact (the
// broker, other sessions) is checked from outside by tests/integration/test_badinput.py.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/error.h"
#include "tests/badinput/client.h"
#include "tests/badinput/crypto.h"

namespace xcg::badinput {

struct Env {
  uint16_t port = 0;
  std::string user;  // a domain the key logs in to
  Ed25519Key key;
  unsigned max_auth_tries = 6;
  unsigned max_key_offers = 32;
  double login_grace_s = 30;
};

// What the gateway did (one line), or how it misbehaved.
using Outcome = Result<std::string>;

struct Case {
  std::string name;
  std::string what;
  std::function<Outcome(const Env&)> run;
};

std::vector<Case> stream_cases();      // version exchange, framing, key exchange
std::vector<Case> auth_cases();        // user authentication
std::vector<Case> channel_cases();     // after authentication
std::vector<Case> disconnect_cases();  // the client vanishing in every phase

// --- helpers shared by the case files ---

tl::unexpected<Error> misbehaved(std::string why);
Result<Client> connect(const Env& env, Deadline deadline);
// Connected, keys exchanged, ssh-userauth accepted.
Result<Client> ready_for_auth(const Env& env, Deadline deadline);
Result<Client> logged_in(const Env& env, Deadline deadline);
// The server must close the connection within `seconds`.
Outcome expect_closed(Client& c, double seconds, const std::string& what);
// `status` on a new channel of this connection exits 0 with the domain's status line.
Outcome status_works(Client& c, const Env& env, const std::string& what);
// Same, on an open channel that has not run anything yet.
Outcome status_works_on(Client& c, uint32_t channel, const Env& env, const std::string& what);
// After a request the server did not answer within a few seconds: is the connection still
// alive (the right key logs in), closed, or hung (misbehaved)?
Outcome after_silence(Client& c, const Env& env, const std::string& what);
// For an error that ended waiting for an answer: closed_or if the server hung up,
// after_silence if it did not answer in time.
Outcome closed_or_silent(Client& c, const Env& env, const Error& e, const std::string& what);
// What to say when the server ended the connection in a case where that is acceptable.
Outcome closed_or(const Error& e, const std::string& what);

}  // namespace xcg::badinput
