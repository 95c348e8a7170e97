#include "gateway/broker/control.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "base/log.h"

namespace xcg::gateway {
namespace {

constexpr size_t kMaxRequest = 1024;
constexpr auto kClientTimeout = std::chrono::seconds(5);

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw std::runtime_error("control socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// Only root, or the user the broker runs as, may control it.
bool peer_allowed(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  return cred.uid == 0 || cred.uid == ::geteuid();
}

}  // namespace

ControlServer::ControlServer(EventLoop& loop, std::string path, Handler handler)
    : loop_(loop), path_(std::move(path)), handler_(std::move(handler)) {
  auto dir = std::filesystem::path(path_).parent_path();
  std::error_code ec;
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  sockaddr_un addr = unix_address(path_);
  listen_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_) throw std::system_error(errno, std::generic_category(), "control socket");
  ::unlink(path_.c_str());     // a stale socket from a previous run
  mode_t old = ::umask(0177);  // created 0600: the socket itself is the first line of defence
  int rc = ::bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc != 0) throw std::system_error(errno, std::generic_category(), "bind control socket " + path_);
  if (::listen(listen_.get(), 16) != 0)
    throw std::system_error(errno, std::generic_category(), "listen " + path_);
  listen_watch_ = loop_.watch(listen_.get(), EPOLLIN, "control socket", [this](uint32_t) { on_accept(); });
}

// The clients' and the socket's registrations end with the members.
ControlServer::~ControlServer() { ::unlink(path_.c_str()); }

void ControlServer::on_accept() {
  for (;;) {
    UniqueFd fd(::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return;
    if (!peer_allowed(fd.get())) {
      log::warn("control socket: refused a client that is not root");
      continue;
    }
    int raw = fd.get();
    Client& c = clients_[raw];
    c.fd = std::move(fd);
    c.serial = next_serial_++;
    c.deadline = loop_.timer(kClientTimeout, "control client timeout", [this, raw] { close_client(raw); });
    c.watch = loop_.watch(
        raw, EPOLLIN, "control client", [this, raw](uint32_t events) { on_client(raw, events); },
        [this, raw] { close_client(raw); });
  }
}

void ControlServer::on_client(int fd, uint32_t events) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  Client& c = it->second;
  if (c.asked && c.out.empty()) {
    if (events & (EPOLLHUP | EPOLLERR)) close_client(fd);  // gone while its answer is prepared
    return;
  }
  if (c.out.empty() && (events & (EPOLLIN | EPOLLHUP))) {
    char buf[512];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0 && !(n < 0 && errno == EAGAIN)) return close_client(fd);
    if (n > 0) c.in.append(buf, static_cast<size_t>(n));
    size_t nl = c.in.find('\n');
    if (nl == std::string::npos) {
      if (c.in.size() > kMaxRequest) close_client(fd);
      return;
    }
    c.asked = true;
    loop_.modify(fd, 0);
    return handler_(c.in.substr(0, nl),
                    [this, fd, serial = c.serial](std::string text) { answer(fd, serial, std::move(text)); });
  }
  if (!c.out.empty()) {
    ssize_t n = ::send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) return close_client(fd);
    c.out.erase(0, static_cast<size_t>(n));
    if (c.out.empty()) close_client(fd);
  }
}

void ControlServer::answer(int fd, uint64_t serial, std::string text) {
  auto it = clients_.find(fd);
  if (it == clients_.end() || it->second.serial != serial) return;
  if (text.empty() || text.back() != '\n') text += '\n';
  it->second.out = std::move(text);
  loop_.modify(fd, EPOLLOUT);
}

void ControlServer::close_client(int fd) { clients_.erase(fd); }  // its registrations end with it

int run_control_client(const std::string& socket_path, const std::vector<std::string>& words) {
  std::string request;
  for (const auto& w : words) request += (request.empty() ? "" : " ") + w;
  request += '\n';
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return std::perror("xcg ctl: socket"), 1;
  sockaddr_un addr = unix_address(socket_path);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "xcg ctl: cannot connect to %s: %s (is xcg serve running?)\n", socket_path.c_str(),
                 std::strerror(errno));
    return 1;
  }
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
    return std::perror("xcg ctl: send"), 1;
  std::string reply;
  char buf[4096];
  for (;;) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 30'000) <= 0) {
      std::fprintf(stderr, "xcg ctl: no answer from %s\n", socket_path.c_str());
      return 1;
    }
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  if (reply.empty()) {
    // The broker hangs up without a word on clients it refuses.
    std::fprintf(stderr, "xcg ctl: %s closed the connection without an answer (not root?)\n",
                 socket_path.c_str());
    return 1;
  }
  std::fwrite(reply.data(), 1, reply.size(), stdout);
  return reply.rfind("error: ", 0) == 0 ? 1 : 0;
}

}  // namespace xcg::gateway
