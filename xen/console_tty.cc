#include "xen/console_tty.h"

#include <fcntl.h>
#include <termios.h>

namespace xcg::xen {
namespace {

Result<void> require_pty_slave(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) < 0) return fail_errno("fstat " + path);
  if (!is_pty_slave(st)) return fail(Errc::invalid_input, path + " is not a pty slave");
  return {};
}

}  // namespace

Result<UniqueFd> open_raw_tty(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path);
  if (auto pty = require_pty_slave(fd.get(), path); !pty) return tl::unexpected(pty.error());
  termios tio{};
  if (::tcgetattr(fd.get(), &tio) < 0) return fail_errno("tcgetattr " + path);
  ::cfmakeraw(&tio);
  if (::tcsetattr(fd.get(), TCSANOW, &tio) < 0) return fail_errno("tcsetattr " + path);
  return fd;
}

}  // namespace xcg::xen
