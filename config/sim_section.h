// The `sim:` section: the simulated hypervisor's guests, or (console_dir) ttys made by someone
// else that it serves as consoles only.
#pragma once

#include "config/config.h"
#include "config/loader.h"
#include "config/table.h"

namespace xcg::config {

const Table<SimSettings>& sim_table();

// With `sim.console_dir` on a sim node, every domain's console is the tty
// `<console_dir>/<name>`: the directory and each domain's tty must exist now, and each be what
// the simulator will open (a pty slave), so that a mistake stops the load (or a reload) and not
// the first login. `read` is the main table's outcome.
void check_console_dir(Loader& in, const Outcome& read, Config& c);

}  // namespace xcg::config
