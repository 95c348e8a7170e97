// What the hypervisor itself says about a domain (libxenctrl), behind a small interface so that
// everything above it can be tested without Xen.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "base/error.h"
#include "xen/hypervisor.h"

namespace xcg::xen {

// Xen's SHUTDOWN_* codes (xen/sched.h).
enum class ShutdownReason : unsigned {
  poweroff = 0,
  reboot = 1,
  suspend = 2,
  crash = 3,
  watchdog = 4,
  soft_reset = 5
};

struct DomainInfo {
  uint32_t domid = 0;
  bool dying = false;     // being destroyed
  bool shutdown = false;  // the guest has shut down; `reason` says why
  ShutdownReason reason = ShutdownReason::poweroff;
  bool paused = false;
  bool hvm = false;
  uint64_t memory_kib = 0;
  unsigned vcpus = 0;  // online
  std::chrono::nanoseconds cpu_time{0};
};

// Running, blocked and paused are all "running" to a customer; a domain that has shut down
// (but not crashed) or is dying is on its way out.
DomainState state_of(const DomainInfo& info);
// Shut down to be saved or migrated (or checkpointed, by `xl save -c`).
bool suspended(const DomainInfo& info);

class DomainInfoSource {
 public:
  virtual ~DomainInfoSource() = default;
  // nullopt when no domain has that id.
  virtual Result<std::optional<DomainInfo>> info(uint32_t domid) const = 0;
};

// libxenctrl. Throws std::runtime_error with one line when /dev/xen/privcmd can't be opened.
std::unique_ptr<DomainInfoSource> open_xenctrl();

}  // namespace xcg::xen
