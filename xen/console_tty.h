// Opening a guest's console tty the way both backends do: Xen opens the pty xenconsoled names,
// the simulator (sim.console_dir) a tty someone else made. One function, so that a benchmark or
// test of the simulator opens a console exactly as production does.
#pragma once

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <string>

#include "base/error.h"
#include "base/unique_fd.h"

namespace xcg::xen {

// Unix98 pty slaves (/dev/pts/N) have majors 136 to 143 (UNIX98_PTY_SLAVE_MAJOR and the next
// seven). Inline so that the config loader checks a console_dir with the same rule without
// linking the backends.
inline bool is_pty_slave(const struct stat& st) {
  unsigned major_number = major(st.st_rdev);
  return S_ISCHR(st.st_mode) && major_number >= 136 && major_number <= 143;
}

// Opens a console's tty raw (as xenconsoled sets up its ptys), non-blocking, refusing, once it
// is open (so that no link or mount can swap it), anything but a Unix98 pty slave: the broker
// is root.
Result<UniqueFd> open_raw_tty(const std::string& path);

}  // namespace xcg::xen
