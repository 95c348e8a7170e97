#include "config/sim_section.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "config/values.h"
#include "xen/console_tty.h"

namespace xcg::config {
namespace {

bool read_guest_command(Loader& in, const Field& f, SimSettings& sim) {
  auto items = read_strings(in, f, true);
  if (!items) return false;
  for (const auto& [arg, node] : *items) sim.guest_command.push_back(arg);
  return true;
}

// Where `sim.console_dir` is written, for messages about the directory.
YAML::Mark console_dir_mark(const Outcome& read) {
  const Field* sim = read.ok("sim");
  if (sim == nullptr || !sim->value.IsMap()) return YAML::Mark();
  return sim->value["console_dir"].Mark();
}

bool check_directory(Loader& in, const Outcome& read, const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    in.report(console_dir_mark(read), fmt::format("sim.console_dir: {}: {}", dir, std::strerror(errno)));
    return false;
  }
  if (S_ISDIR(st.st_mode)) return true;
  in.report(console_dir_mark(read), fmt::format("sim.console_dir: {} is not a directory", dir));
  return false;
}

// stat, not lstat: a console may be a link to the pty (/dev/pts/N changes with every guest).
void check_tty(Loader& in, const Domain& d, const std::string& dir) {
  std::string path = dir + "/" + d.name;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return in.report_at(d.where, fmt::format("domain '{}': its console {} (sim.console_dir): {}", d.name,
                                             path, std::strerror(errno)));
  if (!xen::is_pty_slave(st))
    in.report_at(d.where, fmt::format("domain '{}': its console {} (sim.console_dir) is not a tty (a pty "
                                      "slave, /dev/pts/N, or a link to one)",
                                      d.name, path));
}

}  // namespace

const Table<SimSettings>& sim_table() {
  static const Table<SimSettings> table{{
      custom("guest_command", read_guest_command),
      field("autostart", Bool{}, &SimSettings::autostart),
      field("shutdown_grace_ms", Integer{0, 600000}, &SimSettings::shutdown_grace_ms),
      field("toolstack", AbsolutePath{}, &SimSettings::toolstack),
      field("console_dir", AbsolutePath{}, &SimSettings::console_dir),
  }};
  return table;
}

void check_console_dir(Loader& in, const Outcome& read, Config& c) {
  const std::string& dir = c.sim.console_dir;
  if (dir.empty() || c.hypervisor != HypervisorKind::sim || c.is_front()) return;
  if (!check_directory(in, read, dir)) return;
  for (const auto& [name, d] : c.domains) check_tty(in, d, dir);
}

}  // namespace xcg::config
