// What a new config means for what runs: the settings that only a restart applies, and the
// rights each logged-in session keeps. Pure functions of the two configs and a session, so
// that the rules of a reload are tested without a broker.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "gateway/broker/session_record.h"

namespace xcg::gateway {

// Settings read once at start-up that differ from the running config `a` in the new one `b`:
// "listen", "console", "domain web1 memory", ... A reload keeps the running values and says so.
std::vector<std::string> restart_only_changes(const config::Config& a, const config::Config& b);

// Rights a reload takes away apply at once, also to a console already attached; rights it
// adds apply from the next login: the session was told at login what it may do and keeps to it.
struct RightsChange {
  bool revoke = false;            // the key no longer reaches the session's domain
  bool withdraw_console = false;  // the domain no longer allows `console`
  bool make_readonly = false;     // the key became read-only
};
RightsChange rights_after_reload(const config::Config& fresh, const SessionRecord& s);

}  // namespace xcg::gateway
