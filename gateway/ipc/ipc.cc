#include "gateway/ipc/ipc.h"

#include <string.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <tuple>
#include <type_traits>

#include <fmt/format.h>

namespace xcg::gateway::ipc {
namespace {

// Limits decode enforces on what a field may hold; each vector element type and each enum
// carried in a message needs its entry here (the default admits nothing).
template <class T>
constexpr uint32_t kMaxElements = 0;
template <>
constexpr uint32_t kMaxElements<std::string> = 64;
template <>
constexpr uint32_t kMaxElements<config::Action> = std::size(config::kAllActions);
template <class E>
constexpr E kLastEnumerator = E{};
template <>
constexpr config::Action kLastEnumerator<config::Action> = config::Action::sysrq;

class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) u8(static_cast<uint8_t>(v >> shift));
  }
  template <class T>
  void field(const T& v) {
    if constexpr (std::is_same_v<T, bool>) u8(v ? 1 : 0);
    else if constexpr (std::is_same_v<T, uint8_t>) u8(v);
    else if constexpr (std::is_same_v<T, uint32_t>) u32(v);
    else if constexpr (std::is_enum_v<T>) u8(static_cast<uint8_t>(v));
    else if constexpr (std::is_same_v<T, std::string>) str(v);
    else sequence(v);
  }
  std::string take() { return std::move(out_); }

 private:
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  template <class T>
  void sequence(const std::vector<T>& v) {
    u32(static_cast<uint32_t>(v.size()));
    for (const auto& element : v) field(element);
  }
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
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | u8();
    return v;
  }
  template <class T>
  void field(T& v) {
    if constexpr (std::is_same_v<T, bool>) v = boolean();
    else if constexpr (std::is_same_v<T, uint8_t>) v = u8();
    else if constexpr (std::is_same_v<T, uint32_t>) v = u32();
    else if constexpr (std::is_enum_v<T>) v = enumerator<T>();
    else if constexpr (std::is_same_v<T, std::string>) v = str();
    else sequence(v);
  }

 private:
  bool boolean() {
    uint8_t v = u8();
    if (v > 1) ok_ = false;
    return v == 1;
  }
  template <class E>
  E enumerator() {
    uint8_t v = u8();
    if (v > static_cast<uint8_t>(kLastEnumerator<E>)) ok_ = false;
    return static_cast<E>(v);
  }
  std::string str() {
    uint32_t n = u32();
    if (n > kMaxString || !need(n)) return fail_string();
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  template <class T>
  void sequence(std::vector<T>& v) {
    uint32_t n = u32();
    if (n > kMaxElements<T>) ok_ = false;
    for (uint32_t i = 0; ok_ && i < n; ++i) field(v.emplace_back());
  }
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

// Both directions walk the same list, M::fields, so their layouts cannot differ.
template <class M>
void put(Writer& w, const M& m) {
  std::apply([&](auto... field) { (w.field(m.*field), ...); }, M::fields);
}

template <class M>
M get(Reader& r) {
  M m;
  std::apply([&](auto... field) { (r.field(m.*field), ...); }, M::fields);
  return m;
}

// Calls f(std::type_identity<M>{}) for the alternative M of Message whose type byte is t.
// False if no message has that type.
template <class F>
bool with_message_type(Type t, F&& f) {
  return [&]<size_t... I>(std::index_sequence<I...>) {
    using std::variant_alternative_t;
    return ((kMessageTypes[I] == t ? (f(std::type_identity<variant_alternative_t<I, Message>>{}), true)
                                   : false) ||
            ...);
  }
  (std::make_index_sequence<std::variant_size_v<Message>>{});
}

bool known_type(uint8_t t) {
  return with_message_type(static_cast<Type>(t), [](auto) {});
}

}  // namespace

Type type_of(const Message& m) { return kMessageTypes[m.index()]; }

std::string_view type_name(Type t) {
  std::string_view name = "unknown";
  with_message_type(t, [&name](auto tag) { name = decltype(tag)::type::name; });
  return name;
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
  Message m;
  with_message_type(static_cast<Type>(raw), [&](auto tag) { m = get<typename decltype(tag)::type>(r); });
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
