#include "gateway/web/session_watch.h"

#include <sys/epoll.h>

#include <cerrno>
#include <system_error>

namespace xcg::gateway::web {
namespace {

bool add(int epoll, int fd) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  return ::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev) == 0;
}

}  // namespace

SessionWatch::SessionWatch(int broker_fd) : epoll_(::epoll_create1(EPOLL_CLOEXEC)), broker_(broker_fd) {
  if (!epoll_ || !add(epoll_.get(), broker_fd))
    throw std::system_error(errno, std::generic_category(), "session epoll");
}

void SessionWatch::watch_console(std::optional<WatchedConsole> console) {
  if (console == console_) return;
  // ENOENT and EBADF are expected: a closed descriptor left the set by itself.
  if (console_) (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, console_->fd, nullptr);
  console_ = console;
  if (console_ && !add(epoll_.get(), console_->fd)) console_.reset();  // not watched: the tick still steps
}

void SessionWatch::forget_broker() {
  if (broker_ >= 0) (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, broker_, nullptr);
  broker_ = -1;
}

SessionWatch::Ready SessionWatch::ready() {
  epoll_event events[2];
  int n = ::epoll_wait(epoll_.get(), events, 2, 0);
  Ready r;
  for (int i = 0; i < n; ++i) {
    r.broker |= events[i].data.fd == broker_;
    r.console |= console_ && events[i].data.fd == console_->fd;
  }
  return r;
}

}  // namespace xcg::gateway::web
