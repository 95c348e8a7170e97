#include "bench/loadgen/conn.h"

#include <poll.h>
#include <sys/epoll.h>

namespace xcg::bench {
namespace {

using ssh_client::Client;

// The client's poll(2) events go straight to epoll.
static_assert(POLLIN == EPOLLIN && POLLOUT == EPOLLOUT);

}  // namespace

Conn::Conn(EventLoop& loop, Target target, std::string token, Handlers handlers)
    : loop_(loop), target_(std::move(target)), token_(std::move(token)), handlers_(std::move(handlers)) {}

Conn::~Conn() { close(); }

void Conn::start() {
  ssh_client::Options options{
      .host = target_.host, .port = target_.port, .user = target_.user, .key = target_.key};
  client_ = std::make_unique<Client>(std::move(options), [this](std::string_view chunk) { take(chunk); });
  advance();
}

bool Conn::send(std::string_view bytes) {
  if (ended_ || !client_) return false;
  bool sent = client_->send(bytes);
  settle();
  return sent && !ended_;
}

void Conn::close() {
  unwatch();
  if (client_) client_->disconnect();
  ended_ = true;
}

std::string_view Conn::stage() const {
  if (ended_) return "ended";
  if (!client_) return "idle";
  if (attached_) return "attached";
  if (client_->phase() == Client::Phase::running) return "waiting for the console";
  return client_->phase_name();
}

const ssh_client::Timings& Conn::times() const {
  static const ssh_client::Timings none;
  return client_ ? client_->timings() : none;
}

void Conn::advance() {
  client_->step();
  settle();
}

// After the client moved: the end, the token once the shell runs, the loop's registration.
void Conn::settle() {
  if (ended_) return;  // a handler closed us
  if (client_->finished())
    return end(client_->phase() == Client::Phase::failed ? client_->error() : "server closed the channel");
  if (client_->phase() == Client::Phase::running && !token_sent_) {
    token_sent_ = true;
    // Ctrl-C first: it clears whatever an earlier login left on the guest's line.
    if (!send("\x03" + token_)) return;
  }
  watch();
}

void Conn::watch() {
  int fd = client_->fd();
  auto events = static_cast<uint32_t>(client_->poll_events());
  if (fd < 0) return end("connect: no socket");
  if (fd != fd_) {
    unwatch();
    loop_.add(fd, events, "connection", [this](uint32_t) { advance(); });
    fd_ = fd;
  } else if (events != events_) {
    loop_.modify(fd, events);
  }
  events_ = events;
}

void Conn::unwatch() {
  if (fd_ >= 0) loop_.remove(fd_);
  fd_ = -1;
}

void Conn::end(std::string why) {
  if (ended_) return;
  error_ = std::move(why);
  close();
  if (handlers_.ended) handlers_.ended(*this);
}

void Conn::take(std::string_view chunk) {
  if (attached_) {
    if (handlers_.data) handlers_.data(*this, chunk);
    return;
  }
  tail_.append(chunk);
  size_t at = tail_.find(token_);
  if (at == std::string::npos) {
    if (tail_.size() > token_.size()) tail_.erase(0, tail_.size() - token_.size());
    return;
  }
  std::string rest = tail_.substr(at + token_.size());
  tail_.clear();
  attached_at_ = Clock::now();
  attached_ = true;
  if (handlers_.attached) handlers_.attached(*this);
  if (attached() && !rest.empty() && handlers_.data) handlers_.data(*this, rest);
}

}  // namespace xcg::bench
