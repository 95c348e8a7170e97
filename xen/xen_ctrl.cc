#include "xen/xen_ctrl.h"

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "base/log.h"

// Xen 4.17's headers have no extern "C" guards, and xenctrl.h uses GNU extensions.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
extern "C" {
#include <xenctrl.h>
}
#pragma GCC diagnostic pop

namespace xcg::xen {

static_assert(static_cast<unsigned>(ShutdownReason::crash) == SHUTDOWN_crash);
static_assert(static_cast<unsigned>(ShutdownReason::soft_reset) == SHUTDOWN_soft_reset);

DomainState state_of(const DomainInfo& info) {
  if (info.shutdown && info.reason == ShutdownReason::crash) return DomainState::crashed;
  if (info.dying || info.shutdown) return DomainState::shutting_down;
  return DomainState::running;
}

bool suspended(const DomainInfo& info) { return info.shutdown && info.reason == ShutdownReason::suspend; }

namespace {

// libxenctrl's messages go to our log: the failures that matter come back as return codes and
// are reported by the caller, in one line.
void log_message(xentoollog_logger*, xentoollog_level level, int errnoval, const char* context,
                 const char* format, va_list args) {
  char text[512];
  std::vsnprintf(text, sizeof text, format, args);
  std::string line = fmt::format("libxenctrl: {}{}{}", context ? context : "", context ? ": " : "", text);
  if (errnoval >= 0) line += fmt::format(": {}", std::strerror(errnoval));
  if (level >= XTL_ERROR) log::warn("{}", line);
  else log::debug("{}", line);
}

void log_progress(xentoollog_logger*, const char*, const char*, int, unsigned long, unsigned long) {}
void log_destroy(xentoollog_logger*) {}

class XenCtrl final : public DomainInfoSource {
 public:
  XenCtrl() {
    logger_.vmessage = log_message;
    logger_.progress = log_progress;
    logger_.destroy = log_destroy;
    xch_ = xc_interface_open(&logger_, &logger_, 0);
    if (!xch_)
      throw std::runtime_error(
          fmt::format("libxenctrl: cannot open the hypervisor interface "
                      "(/dev/xen/privcmd): {}",
                      std::strerror(errno)));
  }
  ~XenCtrl() override {
    if (xc_interface_close(xch_) != 0) log::warn("libxenctrl: closing: {}", std::strerror(errno));
  }
  XenCtrl(const XenCtrl&) = delete;
  XenCtrl& operator=(const XenCtrl&) = delete;

  Result<std::optional<DomainInfo>> info(uint32_t domid) const override {
    xc_domaininfo_t raw{};
    // Returns the first domain with an id >= domid, so the id has to be checked.
    int n = xc_domain_getinfolist(xch_, domid, 1, &raw);
    if (n < 0) return fail_errno(fmt::format("libxenctrl: domain info of {}", domid));
    if (n == 0 || raw.domain != domid) return std::optional<DomainInfo>();
    return std::optional<DomainInfo>(convert(raw));
  }

 private:
  static DomainInfo convert(const xc_domaininfo_t& raw) {
    DomainInfo info;
    info.domid = raw.domain;
    info.dying = raw.flags & XEN_DOMINF_dying;
    info.shutdown = raw.flags & XEN_DOMINF_shutdown;
    info.reason =
        static_cast<ShutdownReason>((raw.flags >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask);
    info.paused = raw.flags & XEN_DOMINF_paused;
    info.hvm = raw.flags & XEN_DOMINF_hvm_guest;
    info.memory_kib = raw.tot_pages * (XC_PAGE_SIZE / 1024);
    info.vcpus = raw.nr_online_vcpus;
    info.cpu_time = std::chrono::nanoseconds(raw.cpu_time);
    return info;
  }

  xentoollog_logger logger_{};
  xc_interface* xch_ = nullptr;
};

}  // namespace

std::unique_ptr<DomainInfoSource> open_xenctrl() { return std::make_unique<XenCtrl>(); }

}  // namespace xcg::xen
