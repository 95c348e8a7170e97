#include "xen/hypervisor.h"

#include <fmt/format.h>

namespace xcg::xen {

std::string_view state_name(DomainState s) {
  switch (s) {
    case DomainState::running: return "running";
    case DomainState::shutting_down: return "shutting down";
    case DomainState::shut_off: return "shut off";
    case DomainState::crashed: return "crashed";
  }
  return "unknown";
}

std::string_view lifecycle_name(Lifecycle a) {
  switch (a) {
    case Lifecycle::start: return "start";
    case Lifecycle::shutdown: return "shutdown";
    case Lifecycle::reboot: return "reboot";
    case Lifecycle::destroy: return "destroy";
  }
  return "unknown";
}

namespace {

// "0:05:12", or "2d 3:04:05" past a day.
std::string format_uptime(std::chrono::seconds up) {
  auto total = up.count() < 0 ? 0 : static_cast<uint64_t>(up.count());
  uint64_t days = total / 86400;
  uint64_t hours = total / 3600 % 24;
  uint64_t minutes = total / 60 % 60;
  uint64_t seconds = total % 60;
  std::string clock = fmt::format("{}:{:02}:{:02}", hours, minutes, seconds);
  return days ? fmt::format("{}d {}", days, clock) : clock;
}

}  // namespace

std::string format_status(const DomainStatus& s) {
  std::string out = fmt::format("{}: {}", s.name, state_name(s.state));
  if (s.domid) out += fmt::format(", domid {}", *s.domid);
  // Unknown (zero) for a Xen domain that does not exist: its size is in its xl config file.
  if (s.memory_mib || s.vcpus)
    out += fmt::format(", {} MiB, {} vCPU{}", s.memory_mib, s.vcpus, s.vcpus == 1 ? "" : "s");
  if (s.state == DomainState::running) out += ", up " + format_uptime(s.uptime);
  if (s.cpu_time) out += ", cpu " + format_uptime(*s.cpu_time);
  return out;
}

}  // namespace xcg::xen
