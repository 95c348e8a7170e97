// The lock `xl console` (xenconsole) takes on a domain's console: flock on
// <XEN_LOCK_DIR>/xenconsole.<domid>. Holding it while xcg reads the pty makes an operator's
// `xl console` fail at once with "Could not lock" instead of stealing half the output.
#pragma once

#include <cstdint>
#include <string>

#include "base/error.h"
#include "base/unique_fd.h"

namespace xcg::xen {

class ConsoleLock {
 public:
  // Takes the lock without waiting, as xenconsole does: open (creating it), flock(LOCK_EX |
  // LOCK_NB), then check that the file locked is still the one at that path (the holder unlinks
  // it on release). Busy: Errc::unavailable with sys_errno EWOULDBLOCK.
  static Result<ConsoleLock> take(const std::string& dir, uint32_t domid);
  static std::string path_for(const std::string& dir, uint32_t domid);

  ConsoleLock() = default;
  ConsoleLock(ConsoleLock&&) noexcept = default;
  ConsoleLock& operator=(ConsoleLock&& other) noexcept;
  ~ConsoleLock() { release(); }

  // Unlinks, then unlocks: the order xenconsole uses, so a waiter re-checks and starts afresh.
  void release() noexcept;
  bool held() const { return fd_.valid(); }
  uint32_t domid() const { return domid_; }

 private:
  std::string path_;
  UniqueFd fd_;
  uint32_t domid_ = 0;
};

}  // namespace xcg::xen
