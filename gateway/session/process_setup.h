// What xcg-session sets up for itself before anything else runs (docs/performance.md, "One
// login, step by step"): settings that make each login cheaper and change nothing a customer
// sees.
#pragma once

namespace xcg::gateway {

// False if OpenSSL refused its settings; then the session should not go on.
bool set_up_session_process();

}  // namespace xcg::gateway
