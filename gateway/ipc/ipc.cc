#include "gateway/ipc/ipc.h"

#include <string.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <fmt/format.h>

namespace xcg::gateway::ipc {
namespace {

class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void boolean(bool v) { u8(v ? 1 : 0); }
  void u32(uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) u8(static_cast<uint8_t>(v >> shift));
  }
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  void strings(const std::vector<std::string>& v) {
    u32(static_cast<uint32_t>(v.size()));
    for (const auto& s : v) str(s);
  }
  void actions(const std::vector<config::Action>& v) {
    u32(static_cast<uint32_t>(v.size()));
    for (auto a : v) u8(static_cast<uint8_t>(a));
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads fields in order; the first failure sticks, so callers check ok() once at the end.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool at_end() const { return in_.empty(); }

  uint8_t u8() {
    if (!need(1)) return 0;
    uint8_t v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return v;
  }
  bool boolean() {
    uint8_t v = u8();
    if (v > 1) ok_ = false;
    return v == 1;
  }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | u8();
    return v;
  }
  std::string str() {
    uint32_t n = u32();
    if (n > kMaxString || !need(n)) return fail_string();
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  std::vector<std::string> strings() {
    std::vector<std::string> v;
    uint32_t n = u32();
    if (n > 64) ok_ = false;
    for (uint32_t i = 0; ok_ && i < n; ++i) v.push_back(str());
    return v;
  }
  std::vector<config::Action> actions() {
    std::vector<config::Action> v;
    uint32_t n = u32();
    if (n > std::size(config::kAllActions)) ok_ = false;
    for (uint32_t i = 0; ok_ && i < n; ++i) v.push_back(action());
    return v;
  }
  config::Action action() {
    uint8_t v = u8();
    if (v > static_cast<uint8_t>(config::Action::sysrq)) ok_ = false;
    return static_cast<config::Action>(v);
  }

 private:
  bool need(size_t n) {
    if (in_.size() < n) ok_ = false;
    return ok_;
  }
  std::string fail_string() {
    ok_ = false;
    return {};
  }
  std::string_view in_;
  bool ok_ = true;
};

void put(Writer& w, const Hello& m) {
  w.u32(m.protocol);
  w.strings(m.host_keys_pem);
  w.boolean(m.drop_privileges);
  w.u32(m.uid);
  w.u32(m.gid);
  w.str(m.chroot_dir);
  w.u32(m.login_grace_s);
  w.u32(m.max_auth_tries);
  w.u32(m.max_key_offers);
  w.u32(m.idle_timeout_s);
}
void put(Writer& w, const LogRecord& m) {
  w.u8(m.level);
  w.str(m.text);
}
void put(Writer& w, const AuthorizeReq& m) {
  w.str(m.user);
  w.str(m.key_type);
  w.str(m.key_base64);
  w.boolean(m.signature_ok);
}
void put(Writer& w, const AuthorizeAns& m) {
  w.boolean(m.ok);
  w.str(m.domain);
  w.boolean(m.console_on_login);
  w.actions(m.actions);
  w.str(m.fingerprint);
  w.boolean(m.readonly);
}
void put(Writer&, const StatusReq&) {}
void put(Writer& w, const StatusAns& m) {
  w.boolean(m.ok);
  w.str(m.text);
}
void put(Writer& w, const ActionReq& m) { w.u8(static_cast<uint8_t>(m.action)); }
void put(Writer& w, const ActionAns& m) {
  w.boolean(m.ok);
  w.str(m.text);
}
void put(Writer&, const AttachReq&) {}
void put(Writer& w, const LogReq& m) { w.u32(m.lines); }
void put(Writer& w, const LogAns& m) {
  w.boolean(m.ok);
  w.str(m.text);
}
void put(Writer&, const WhoReq&) {}
void put(Writer& w, const WhoAns& m) { w.strings(m.viewers); }
void put(Writer& w, const SysrqReq& m) { w.u8(m.key); }
void put(Writer& w, const Revoke& m) { w.str(m.text); }
void put(Writer& w, const AttachAns& m) {
  w.boolean(m.ok);
  w.str(m.text);
}

Message get(Reader& r, Type t) {
  switch (t) {
    case Type::hello: {
      Hello m;
      m.protocol = r.u32();
      m.host_keys_pem = r.strings();
      m.drop_privileges = r.boolean();
      m.uid = r.u32();
      m.gid = r.u32();
      m.chroot_dir = r.str();
      m.login_grace_s = r.u32();
      m.max_auth_tries = r.u32();
      m.max_key_offers = r.u32();
      m.idle_timeout_s = r.u32();
      return m;
    }
    case Type::log: {
      LogRecord m;
      m.level = r.u8();
      m.text = r.str();
      return m;
    }
    case Type::authorize_req: {
      AuthorizeReq m;
      m.user = r.str();
      m.key_type = r.str();
      m.key_base64 = r.str();
      m.signature_ok = r.boolean();
      return m;
    }
    case Type::authorize_ans: {
      AuthorizeAns m;
      m.ok = r.boolean();
      m.domain = r.str();
      m.console_on_login = r.boolean();
      m.actions = r.actions();
      m.fingerprint = r.str();
      m.readonly = r.boolean();
      return m;
    }
    case Type::status_req: return StatusReq{};
    case Type::status_ans: {
      StatusAns m;
      m.ok = r.boolean();
      m.text = r.str();
      return m;
    }
    case Type::action_req: return ActionReq{r.action()};
    case Type::action_ans: {
      ActionAns m;
      m.ok = r.boolean();
      m.text = r.str();
      return m;
    }
    case Type::attach_req: return AttachReq{};
    case Type::attach_ans: {
      AttachAns m;
      m.ok = r.boolean();
      m.text = r.str();
      return m;
    }
    case Type::log_req: return LogReq{r.u32()};
    case Type::log_ans: {
      LogAns m;
      m.ok = r.boolean();
      m.text = r.str();
      return m;
    }
    case Type::who_req: return WhoReq{};
    case Type::who_ans: return WhoAns{r.strings()};
    case Type::sysrq_req: return SysrqReq{r.u8()};
    case Type::revoke: return Revoke{r.str()};
  }
  return StatusReq{};  // unreachable: decode() checked the type
}

bool known_type(uint8_t t) { return t >= 1 && t <= static_cast<uint8_t>(Type::revoke) && t != 3; }

}  // namespace

Type type_of(const Message& m) { return kMessageTypes[m.index()]; }

std::string_view type_name(Type t) {
  switch (t) {
    case Type::hello: return "hello";
    case Type::log: return "log";
    case Type::authorize_req: return "authorize_req";
    case Type::authorize_ans: return "authorize_ans";
    case Type::status_req: return "status_req";
    case Type::status_ans: return "status_ans";
    case Type::action_req: return "action_req";
    case Type::action_ans: return "action_ans";
    case Type::attach_req: return "attach_req";
    case Type::attach_ans: return "attach_ans";
    case Type::log_req: return "log_req";
    case Type::log_ans: return "log_ans";
    case Type::who_req: return "who_req";
    case Type::who_ans: return "who_ans";
    case Type::sysrq_req: return "sysrq_req";
    case Type::revoke: return "revoke";
  }
  return "unknown";
}

std::string encode(const Message& m) {
  Writer w;
  w.u8(static_cast<uint8_t>(type_of(m)));
  std::visit([&w](const auto& msg) { put(w, msg); }, m);
  return w.take();
}

Result<Message> decode(std::string_view frame) {
  if (frame.empty() || frame.size() > kMaxFrame) return fail(Errc::invalid_input, "bad frame size");
  uint8_t raw = static_cast<uint8_t>(frame[0]);
  if (!known_type(raw)) return fail(Errc::invalid_input, "unknown message type");
  Reader r(frame.substr(1));
  if (static_cast<Type>(raw) == Type::hello) {
    Reader first(frame.substr(1));
    uint32_t protocol = first.u32();
    if (first.ok() && protocol != kProtocolVersion)
      return fail(Errc::invalid_input,
                  fmt::format("the broker speaks IPC protocol {} and this session program {}: restart xcg "
                              "after an upgrade, so that both come from the same version",
                              protocol, kProtocolVersion));
  }
  Message m = get(r, static_cast<Type>(raw));
  if (!r.ok()) return fail(Errc::invalid_input, "malformed message");
  if (!r.at_end()) return fail(Errc::invalid_input, "trailing bytes in message");
  return m;
}

Result<void> send(int sock, const Message& m, int pass_fd) {
  std::string frame = encode(m);
  if (frame.size() > kMaxFrame) return fail(Errc::invalid_input, "message too large");
  iovec iov{frame.data(), frame.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (pass_fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
  }
  ssize_t n;
  do {
    n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail_errno("ipc send");
  if (static_cast<size_t>(n) != frame.size()) return fail(Errc::system, "ipc send: short write");
  return {};
}

namespace {

// One byte more than a frame may have, so that a larger packet shows as MSG_TRUNC or as a
// frame decode rejects.
constexpr size_t kBufferSize = kMaxFrame + 1;

// Reused and never cleared by receive(): recvmsg fills the first n bytes, and only those are
// decoded. (A fresh zero-filled buffer per message cost a 64 KiB memset each time, and kept
// 64 KiB of every session's heap dirty.) Hence wipe_receive_buffer() after a secret.
char* receive_buffer_data() {
  thread_local std::unique_ptr<char[]> buf = std::make_unique_for_overwrite<char[]>(kBufferSize);
  return buf.get();
}

}  // namespace

std::span<const char> receive_buffer() { return {receive_buffer_data(), kBufferSize}; }

void wipe_receive_buffer() noexcept { ::explicit_bzero(receive_buffer_data(), kBufferSize); }

Result<Received> receive(int sock) {
  char* buf = receive_buffer_data();
  iovec iov{buf, kBufferSize};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail_errno("ipc receive");
  // Take ownership of every passed descriptor first, so none leaks on a rejected message.
  std::vector<UniqueFd> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.emplace_back(fd);
    }
  }
  if (n == 0) return fail(Errc::peer_closed, "peer closed the connection");
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) return fail(Errc::invalid_input, "oversized message");
  if (fds.size() > 1) return fail(Errc::invalid_input, "too many descriptors");
  auto decoded = decode(std::string_view(buf, static_cast<size_t>(n)));
  if (!decoded) return tl::unexpected(decoded.error());
  Received r{std::move(*decoded), fds.empty() ? UniqueFd() : std::move(fds[0])};
  return r;
}

}  // namespace xcg::gateway::ipc
