// The service manager's notification protocol (sd_notify(3)) without libsystemd: one
// datagram of "VAR=VALUE" lines to the AF_UNIX socket named in $NOTIFY_SOCKET.
//
// Outside systemd (no $NOTIFY_SOCKET) every call succeeds and sends nothing, so callers need
// no "are we under systemd" branches. With Type=notify, the broker calls:
//   ready(...)      once the listeners are open and the hypervisor is up;
//   reloading()     when a reload starts, then ready(...) when it is done (applied or not);
//   stopping()      when it begins to shut down.
// Children must not inherit $NOTIFY_SOCKET (NotifyAccess=main would ignore them anyway).
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"

namespace xcg::sd_notify {

// Sends `state` as it is: one or more "VAR=VALUE" lines, e.g. "WATCHDOG=1".
Result<void> send(std::string_view state);

// "READY=1", plus "STATUS=status" when status is not empty.
Result<void> ready(std::string_view status = {});
// "RELOADING=1" with MONOTONIC_USEC=now (which Type=notify-reload in systemd >= 253 wants).
Result<void> reloading();
// "STOPPING=1".
Result<void> stopping();
// "STATUS=status": a one-line state for `systemctl status`.
Result<void> status(std::string_view text);

// The STATUS= value with line breaks replaced by spaces: a newline in it would start a
// new assignment (a domain name can't hold one, but an error message might).
std::string one_line(std::string_view text);

// True when fd 2 is the journal's stream ($JOURNAL_STREAM names its device and inode): then
// the journal timestamps each line itself, and a "<N>" prefix sets its priority.
bool stderr_is_journal();

}  // namespace xcg::sd_notify
