// Which session programs the broker execs for each connection (xcg-session for SSH, xcg-web for
// the browser console): decided once, at start-up, as an absolute path (never a PATH lookup).
#pragma once

#include <string>

namespace xcg::gateway {

// `self` is the running xcg (/proc/self/exe; "" if unknown). The installed xcg, `installed_xcg`
// or a path to the same file, runs `installed_session`; any other xcg (a build tree) runs the
// xcg-session beside it, so that a broker never runs the sessions of another build.
std::string session_program_for(const std::string& self, const std::string& installed_xcg,
                                const std::string& installed_session);
// The same rule for xcg-web.
std::string web_program_for(const std::string& self, const std::string& installed_xcg,
                            const std::string& installed_web);

}  // namespace xcg::gateway
