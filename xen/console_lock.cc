#include "xen/console_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/log.h"

namespace xcg::xen {
namespace {

// Each round loses only to a holder that released between our open and our stat, so a few
// rounds are plenty; the bound keeps a pathological race from spinning.
constexpr int kMaxRounds = 10;

int flock_retrying(int fd) {
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc < 0 && errno == EINTR);
  return rc;
}

}  // namespace

std::string ConsoleLock::path_for(const std::string& dir, uint32_t domid) {
  return fmt::format("{}/xenconsole.{}", dir, domid);
}

Result<ConsoleLock> ConsoleLock::take(const std::string& dir, uint32_t domid) {
  std::string path = path_for(dir, domid);
  for (int round = 0; round < kMaxRounds; ++round) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, S_IRUSR | S_IWUSR));
    if (!fd) return fail_errno("open " + path);
    if (flock_retrying(fd.get()) < 0) {
      if (errno != EWOULDBLOCK) return fail_errno("flock " + path);
      return tl::unexpected(
          Error{Errc::unavailable, "the console is in use by another program (xl console?)", EWOULDBLOCK});
    }
    struct stat held {
    }, named{};
    if (::fstat(fd.get(), &held) < 0) return fail_errno("fstat " + path);
    if (::stat(path.c_str(), &named) < 0) {
      if (errno != ENOENT) return fail_errno("stat " + path);
      continue;  // unlinked by its last holder after our open: try the new file
    }
    if (held.st_dev != named.st_dev || held.st_ino != named.st_ino) continue;
    ConsoleLock lock;
    lock.path_ = std::move(path);
    lock.fd_ = std::move(fd);
    lock.domid_ = domid;
    return lock;
  }
  return fail(Errc::unavailable, "the console lock " + path + " keeps changing");
}

ConsoleLock& ConsoleLock::operator=(ConsoleLock&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    fd_ = std::move(other.fd_);
    domid_ = other.domid_;
  }
  return *this;
}

void ConsoleLock::release() noexcept {
  if (!fd_) return;
  if (::unlink(path_.c_str()) < 0 && errno != ENOENT)
    log::warn("xen: unlink {}: {}", path_, std::strerror(errno));
  fd_.reset();
}

}  // namespace xcg::xen
