#include "gateway/session/console_link.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace xcg::gateway {
namespace {

constexpr size_t kMaxPendingInput = 64 * 1024;
constexpr size_t kReadChunk = 16 * 1024;

}  // namespace

ConsoleLink::ConsoleLink(UniqueFd socket) : socket_(std::move(socket)) {
  // Should this fail, a hub that stops reading could stall a send; nothing worse.
  (void)set_nonblocking(socket_.get());
}

void ConsoleLink::send(std::string_view bytes) {
  size_t room = kMaxPendingInput - std::min(kMaxPendingInput, pending_.size());
  pending_.append(bytes.substr(0, room));
  while (!pending_.empty()) {
    ssize_t n = ::send(socket_.get(), pending_.data(), pending_.size(), MSG_NOSIGNAL);
    if (n > 0) {
      pending_.erase(0, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return;  // EAGAIN: the hub is busy
    }
  }
}

ConsoleLink::Read ConsoleLink::read_into(OutputQueue& out) {
  char buf[kReadChunk];
  ssize_t n = ::read(socket_.get(), buf, sizeof buf);
  if (n > 0) {
    out.add(Stream::out, std::string_view(buf, static_cast<size_t>(n)));
    return static_cast<size_t>(n) < sizeof buf ? Read::drained : Read::more;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return Read::drained;
  return Read::closed;
}

}  // namespace xcg::gateway
