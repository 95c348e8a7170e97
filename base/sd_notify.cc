#include "base/sd_notify.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "base/unique_fd.h"

namespace xcg::sd_notify {
namespace {

struct SocketAddress {
  sockaddr_un addr{};
  socklen_t length = 0;
};

// "/path" is a file system socket, "@name" an abstract one (the '@' stands for the NUL).
Result<SocketAddress> parse_address(std::string_view name) {
  SocketAddress a;
  a.addr.sun_family = AF_UNIX;
  if (name.size() < 2 || (name[0] != '/' && name[0] != '@'))
    return fail(Errc::invalid_input,
                fmt::format("NOTIFY_SOCKET: expected /PATH or @ABSTRACT, got '{}'", name));
  if (name.size() >= sizeof a.addr.sun_path)
    return fail(Errc::invalid_input, "NOTIFY_SOCKET: the address is too long");
  std::memcpy(a.addr.sun_path, name.data(), name.size());
  if (name[0] == '@') a.addr.sun_path[0] = '\0';
  // An abstract name is exactly its bytes; a path also counts its terminating NUL.
  a.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + (name[0] == '/' ? 1 : 0));
  return a;
}

}  // namespace

Result<void> send(std::string_view state) {
  const char* name = std::getenv("NOTIFY_SOCKET");
  if (name == nullptr || *name == '\0') return {};
  auto address = parse_address(name);
  if (!address) return tl::unexpected(address.error());
  // Non-blocking: a busy service manager must never stall the broker's event loop.
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return fail_errno("NOTIFY_SOCKET: socket");
  for (;;) {
    ssize_t n = ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                         reinterpret_cast<const sockaddr*>(&address->addr), address->length);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno(fmt::format("NOTIFY_SOCKET {}", name));
    // A datagram goes whole or not at all; anything else is a kernel surprise worth naming.
    if (static_cast<size_t>(n) != state.size())
      return fail(Errc::system, fmt::format("NOTIFY_SOCKET {}: short send", name));
    return {};
  }
}

std::string one_line(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c == '\n' || c == '\r') c = ' ';
  return out;
}

Result<void> ready(std::string_view status) {
  if (status.empty()) return send("READY=1");
  return send("READY=1\nSTATUS=" + one_line(status));
}

Result<void> reloading() {
  timespec now{};
  if (::clock_gettime(CLOCK_MONOTONIC, &now) != 0) return fail_errno("clock_gettime");
  auto usec = static_cast<unsigned long long>(now.tv_sec) * 1000000ULL +
              static_cast<unsigned long long>(now.tv_nsec) / 1000ULL;
  return send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}", usec));
}

Result<void> stopping() { return send("STOPPING=1"); }

Result<void> status(std::string_view text) { return send("STATUS=" + one_line(text)); }

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  // "DEVICE:INODE", both decimal (systemd.exec(5)).
  std::string_view text(stream);
  unsigned long long device = 0, inode = 0;
  auto [colon, e1] = std::from_chars(text.data(), text.data() + text.size(), device);
  if (e1 != std::errc() || colon == text.data() + text.size() || *colon != ':') return false;
  auto [end, e2] = std::from_chars(colon + 1, text.data() + text.size(), inode);
  if (e2 != std::errc() || end != text.data() + text.size()) return false;
  struct stat st {};
  if (::fstat(2, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == device &&
         static_cast<unsigned long long>(st.st_ino) == inode;
}

}  // namespace xcg::sd_notify
