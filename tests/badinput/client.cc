#include "tests/badinput/client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "tests/badinput/wire.h"

namespace xcg::badinput {
namespace {

constexpr size_t kMaxPacket = 1024 * 1024;  // larger than any server packet we expect
constexpr uint32_t kWindow = 1u << 30;      // never needs adjusting in a test
constexpr uint32_t kMaxChannelPacket = 32768;

int millis_left(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 60'000));
}

tl::unexpected<Error> closed(std::string why) { return fail(Errc::unavailable, std::move(why)); }

// Waits for `events` on fd; false at the deadline.
Result<bool> wait_for(int fd, short events, Deadline deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, millis_left(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("poll");
    if (n > 0) return true;
    if (Clock::now() >= deadline) return false;
  }
}

}  // namespace

Deadline after(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

std::string printable(std::string_view bytes, size_t max) {
  std::string out;
  for (unsigned char c : bytes) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    if (c >= 0x20 && c < 0x7f && c != '\\') out.push_back(static_cast<char>(c));
    else out += fmt::format("\\x{:02x}", c);
  }
  return out;
}

// --- the byte stream -------------------------------------------------------------------------

Result<Client> Client::connect(uint16_t port, Deadline deadline) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return fail_errno("socket");
  int one = 1;
  if (::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
    return fail_errno("TCP_NODELAY");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS)
    return fail_errno("connect");
  auto ready = wait_for(fd.get(), POLLOUT, deadline);
  if (!ready) return tl::unexpected(ready.error());
  if (!*ready) return fail(Errc::timeout, "connect timed out");
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) return fail_errno("SO_ERROR");
  if (err != 0) return tl::unexpected(Error::from_errno("connect", err));
  return Client(std::move(fd));
}

Result<void> Client::send_raw(std::string_view bytes, Deadline deadline) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
      return closed("closed by the server while we were sending");
    if (n < 0 && errno != EAGAIN) return fail_errno("send");
    auto ready = wait_for(fd_.get(), POLLOUT, deadline);
    if (!ready) return tl::unexpected(ready.error());
    if (!*ready) return fail(Errc::timeout, "the server stopped reading");
  }
  return {};
}

Result<void> Client::fill(size_t n, Deadline deadline) {
  char chunk[16384];
  while (in_.size() < n) {
    ssize_t got = ::recv(fd_.get(), chunk, sizeof chunk, 0);
    if (got > 0) {
      in_.append(chunk, static_cast<size_t>(got));
      continue;
    }
    if (got == 0) return closed("connection closed by the server");
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) return closed("connection reset by the server");
    if (errno != EAGAIN) return fail_errno("recv");
    auto ready = wait_for(fd_.get(), POLLIN, deadline);
    if (!ready) return tl::unexpected(ready.error());
    if (!*ready)
      return fail(Errc::timeout,
                  fmt::format("no answer from the server (have {} of {} bytes)", in_.size(), n));
  }
  return {};
}

std::string Client::consume(size_t n) {
  std::string part = in_.substr(0, n);
  in_.erase(0, n);
  return part;
}

Result<std::string> Client::read_line(Deadline deadline) {
  for (;;) {
    auto end = in_.find('\n');
    if (end != std::string::npos) {
      std::string line = consume(end + 1);
      while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
      return line;
    }
    if (in_.size() > 8192) return fail(Errc::invalid_input, "version line too long");
    if (auto r = fill(in_.size() + 1, deadline); !r) return tl::unexpected(r.error());
  }
}

Result<void> Client::wait_closed(Deadline deadline) {
  in_.clear();
  char chunk[16384];
  for (;;) {
    ssize_t got = ::recv(fd_.get(), chunk, sizeof chunk, 0);
    if (got == 0 || (got < 0 && errno == ECONNRESET)) return {};
    if (got > 0 || errno == EINTR) continue;
    if (errno != EAGAIN) return fail_errno("recv");
    auto ready = wait_for(fd_.get(), POLLIN, deadline);
    if (!ready) return tl::unexpected(ready.error());
    if (!*ready) return fail(Errc::timeout, "the server kept the connection open");
  }
}

void Client::reset() {
  linger l{1, 0};
  // If it fails the close is an ordinary FIN, which the cases also survive.
  (void)::setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  fd_.reset();
}

// --- packets ---------------------------------------------------------------------------------

Result<void> Client::send_packet(std::string_view payload, Deadline deadline) {
  size_t block = out_cipher_ ? 16 : 8;
  // The AEAD length field is outside the padded, encrypted part (OpenSSH's rule for GCM).
  size_t covered = (out_cipher_ ? 0 : 4) + 1 + payload.size();
  size_t padding = block - covered % block;
  if (padding < 4) padding += block;
  Writer body;
  body.byte(static_cast<uint8_t>(padding)).raw(payload).raw(random_bytes(padding));
  Writer length;
  length.u32(static_cast<uint32_t>(body.bytes().size()));
  if (!out_cipher_) return send_raw(length.bytes() + body.bytes(), deadline);
  auto sealed = out_cipher_->seal(length.bytes(), body.bytes());
  if (!sealed) return tl::unexpected(sealed.error());
  return send_raw(length.bytes() + *sealed, deadline);
}

Result<Packet> Client::read_packet(Deadline deadline) {
  if (auto r = fill(4, deadline); !r) return tl::unexpected(r.error());
  uint32_t length = Reader(in_).u32();
  if (length < 5 || length > kMaxPacket)
    return fail(Errc::invalid_input, fmt::format("server packet length {}", length));
  size_t tag = in_cipher_ ? GcmDirection::kTagSize : 0;
  if (auto r = fill(4 + length + tag, deadline); !r) return tl::unexpected(r.error());
  std::string length_field = consume(4);
  std::string body = consume(length + tag);
  if (in_cipher_) {
    auto plain = in_cipher_->open(length_field, body);
    if (!plain) return tl::unexpected(plain.error());
    body = std::move(*plain);
  }
  size_t padding = static_cast<uint8_t>(body[0]);
  if (padding + 1 >= body.size()) return fail(Errc::invalid_input, "server packet without payload");
  Packet p;
  p.payload = body.substr(1, body.size() - 1 - padding);
  p.type = static_cast<uint8_t>(p.payload[0]);
  if (p.type == msg::disconnect) {
    Reader r(std::string_view(p.payload).substr(1));
    uint32_t reason = r.u32();
    auto text = r.string();
    return closed(fmt::format("SSH_MSG_DISCONNECT {}: {}", reason, printable(text)));
  }
  return p;
}

Result<Packet> Client::read_significant(Deadline deadline) {
  for (;;) {
    auto p = read_packet(deadline);
    if (!p) return p;
    if (p->type == msg::unimplemented) ++unimplemented_;
    else if (p->type != msg::ignore && p->type != msg::debug) return p;
  }
}

// --- key exchange ----------------------------------------------------------------------------

Result<void> Client::send_version(Deadline deadline) { return send_raw(client_version_ + "\r\n", deadline); }

Result<void> Client::read_version(Deadline deadline) {
  auto line = read_line(deadline);
  if (!line) return tl::unexpected(line.error());
  if (!line->starts_with("SSH-2.0-"))
    return fail(Errc::invalid_input, "server version line: " + printable(*line));
  server_version_ = *line;
  return {};
}

Result<void> Client::send_kexinit(const KexOptions& options, Deadline deadline) {
  std::string kex = options.kex + (options.strict ? ",kex-strict-c-v00@openssh.com" : "");
  Writer w;
  w.byte(msg::kexinit).raw(random_bytes(16)).string(kex).string("ssh-ed25519");
  w.string("aes256-gcm@openssh.com").string("aes256-gcm@openssh.com");
  w.string("hmac-sha2-256-etm@openssh.com").string("hmac-sha2-256-etm@openssh.com");
  w.string(options.compression).string(options.compression).string("").string("");
  w.boolean(false).u32(0);
  client_kexinit_ = w.bytes();
  return send_packet(client_kexinit_, deadline);
}

Result<void> Client::read_kexinit(Deadline deadline) {
  auto p = read_significant(deadline);
  if (!p) return tl::unexpected(p.error());
  if (p->type != msg::kexinit)
    return fail(Errc::invalid_input, fmt::format("expected KEXINIT, got message {}", p->type));
  server_kexinit_ = p->payload;
  return {};
}

Result<void> Client::send_ecdh_init(Deadline deadline) {
  auto x = X25519::generate();
  if (!x) return tl::unexpected(x.error());
  ephemeral_ = std::move(*x);
  return send_packet(Writer().byte(msg::kex_ecdh_init).string(ephemeral_->public_key()).bytes(), deadline);
}

Result<void> Client::finish_kex(Deadline deadline) {
  auto reply = read_significant(deadline);
  if (!reply) return tl::unexpected(reply.error());
  if (reply->type != msg::kex_ecdh_reply)
    return fail(Errc::invalid_input, fmt::format("expected KEX_ECDH_REPLY, got message {}", reply->type));
  Reader r(std::string_view(reply->payload).substr(1));
  auto host_key = r.string();
  auto server_public = r.string();
  auto signature = r.string();
  if (!r.ok()) return fail(Errc::invalid_input, "truncated KEX_ECDH_REPLY");
  auto secret = ephemeral_->shared_secret(server_public);
  if (!secret) return tl::unexpected(secret.error());
  std::string k = Writer().mpint(*secret).bytes();
  Writer h;
  h.string(client_version_).string(server_version_).string(client_kexinit_).string(server_kexinit_);
  h.string(host_key).string(ephemeral_->public_key()).string(server_public).raw(k);
  std::string hash = sha256(h.bytes());
  if (auto ok = verify_host_signature(host_key, signature, hash); !ok) return tl::unexpected(ok.error());
  if (session_id_.empty()) session_id_ = hash;

  auto derive = [&](char letter) { return sha256(k + hash + letter + session_id_); };
  if (auto sent = send_packet(Writer().byte(msg::newkeys).bytes(), deadline); !sent) return sent;
  out_cipher_.emplace(derive('C'), derive('A'));
  auto newkeys = read_significant(deadline);
  if (!newkeys) return tl::unexpected(newkeys.error());
  if (newkeys->type != msg::newkeys)
    return fail(Errc::invalid_input, fmt::format("expected NEWKEYS, got message {}", newkeys->type));
  in_cipher_.emplace(derive('D'), derive('B'));
  return {};
}

Result<void> Client::handshake(Deadline deadline, const KexOptions& options) {
  if (auto r = send_version(deadline); !r) return r;
  if (auto r = read_version(deadline); !r) return r;
  if (auto r = send_kexinit(options, deadline); !r) return r;
  if (auto r = read_kexinit(deadline); !r) return r;
  if (auto r = send_ecdh_init(deadline); !r) return r;
  return finish_kex(deadline);
}

Result<void> Client::request_service(std::string_view name, Deadline deadline) {
  if (auto r = send_packet(Writer().byte(msg::service_request).string(name).bytes(), deadline); !r) return r;
  auto p = read_significant(deadline);
  if (!p) return tl::unexpected(p.error());
  if (p->type != msg::service_accept)
    return fail(Errc::invalid_input, fmt::format("expected SERVICE_ACCEPT, got message {}", p->type));
  return {};
}

// --- authentication --------------------------------------------------------------------------

std::string Client::publickey_request(std::string_view user, const Ed25519Key& key, bool sign) const {
  Writer body;
  body.byte(msg::userauth_request).string(user).string("ssh-connection").string("publickey");
  body.boolean(sign).string("ssh-ed25519").string(key.public_blob());
  if (!sign) return body.bytes();
  auto signature = key.sign(Writer().string(session_id_).raw(body.bytes()).bytes());
  // A failed signing leaves an empty signature, which the server must refuse anyway.
  return Writer().raw(body.bytes()).string(signature ? *signature : std::string()).bytes();
}

Result<bool> Client::auth_publickey(std::string_view user, const Ed25519Key& key, Deadline deadline) {
  size_t before = auth_answers_.size();
  if (auto r = send_packet(publickey_request(user, key, true), deadline); !r)
    return tl::unexpected(r.error());
  if (auto r = pump_until(deadline, [&] { return auth_answers_.size() > before; }); !r)
    return tl::unexpected(r.error());
  return auth_answers_.back() == msg::userauth_success;
}

Result<void> Client::login(std::string_view user, const Ed25519Key& key, Deadline deadline) {
  if (auto r = handshake(deadline); !r) return r;
  if (auto r = request_service("ssh-userauth", deadline); !r) return r;
  auto ok = auth_publickey(user, key, deadline);
  if (!ok) return tl::unexpected(ok.error());
  if (!*ok) return fail(Errc::not_allowed, "the key was refused");
  return {};
}

// --- channels --------------------------------------------------------------------------------

Result<uint32_t> Client::send_open_session(Deadline deadline) {
  uint32_t id = next_channel_++;
  channels_[id] = ChannelState{};
  Writer w;
  w.byte(msg::channel_open).string("session").u32(id).u32(kWindow).u32(kMaxChannelPacket);
  if (auto r = send_packet(w.bytes(), deadline); !r) return tl::unexpected(r.error());
  return id;
}

Result<uint32_t> Client::open_session(Deadline deadline) {
  auto id = send_open_session(deadline);
  if (!id) return id;
  ChannelState& c = channels_[*id];
  if (auto r = pump_until(deadline, [&] { return c.confirmed || c.refused; }); !r)
    return tl::unexpected(r.error());
  if (c.refused) return fail(Errc::not_allowed, "session channel refused");
  return id;
}

Result<void> Client::send_request(uint32_t channel, std::string_view type, bool want_reply,
                                  std::string_view type_specific, Deadline deadline) {
  Writer w;
  w.byte(msg::channel_request)
      .u32(channels_[channel].remote)
      .string(type)
      .boolean(want_reply)
      .raw(type_specific);
  return send_packet(w.bytes(), deadline);
}

Result<void> Client::send_data(uint32_t channel, std::string_view data, Deadline deadline) {
  return send_packet(Writer().byte(msg::channel_data).u32(channels_[channel].remote).string(data).bytes(),
                     deadline);
}

Result<void> Client::send_close(uint32_t channel, Deadline deadline) {
  ChannelState& c = channels_[channel];
  c.close_sent = true;
  return send_packet(Writer().byte(msg::channel_close).u32(c.remote).bytes(), deadline);
}

Result<uint32_t> Client::exec(std::string_view command, Deadline deadline) {
  auto id = open_session(deadline);
  if (!id) return id;
  if (auto r = send_request(*id, "exec", true, Writer().string(command).bytes(), deadline); !r)
    return tl::unexpected(r.error());
  ChannelState& c = channels_[*id];
  if (auto r = pump_until(deadline, [&] { return c.closed; }); !r) return tl::unexpected(r.error());
  return id;
}

// --- what comes back -------------------------------------------------------------------------

Result<void> Client::pump_until(Deadline deadline, const std::function<bool()>& done) {
  while (!done()) {
    auto p = read_packet(deadline);
    if (!p) return tl::unexpected(p.error());
    if (auto r = handle(*p, deadline); !r) return r;
  }
  return {};
}

Result<void> Client::handle(const Packet& p, Deadline deadline) {
  Reader r(std::string_view(p.payload).substr(1));
  switch (p.type) {
    case msg::ignore:
    case msg::debug:
    case msg::userauth_banner:
    case msg::channel_window_adjust:
    case msg::request_success:
    case msg::request_failure: return {};
    case msg::unimplemented: ++unimplemented_; return {};
    case msg::userauth_failure:
    case msg::userauth_success:
    case msg::userauth_pk_ok: auth_answers_.push_back(p.type); return {};
    case msg::global_request: {
      r.string();
      if (r.boolean()) return send_packet(Writer().byte(msg::request_failure).bytes(), deadline);
      return {};
    }
    default: break;
  }
  if (p.type < msg::channel_open_confirmation || p.type > msg::channel_failure)
    return fail(Errc::invalid_input, fmt::format("unexpected message {} from the server", p.type));
  uint32_t id = r.u32();
  auto it = channels_.find(id);
  if (it == channels_.end())
    return fail(Errc::invalid_input, fmt::format("message {} for unknown channel {}", p.type, id));
  ChannelState& c = it->second;
  switch (p.type) {
    case msg::channel_open_confirmation:
      c.remote = r.u32();
      c.confirmed = true;
      break;
    case msg::channel_open_failure: c.refused = true; break;
    case msg::channel_data: c.out.append(r.string()); break;
    case msg::channel_extended_data:
      r.u32();
      c.err.append(r.string());
      break;
    case msg::channel_eof: c.eof = true; break;
    case msg::channel_close:
      c.closed = true;
      if (!c.close_sent) return send_close(id, deadline);
      break;
    case msg::channel_request: {
      auto type = r.string();
      bool want_reply = r.boolean();
      if (type == "exit-status") c.exit_status = r.u32();
      if (want_reply) return send_packet(Writer().byte(msg::channel_failure).u32(c.remote).bytes(), deadline);
      break;
    }
    case msg::channel_success: ++c.replies_ok; break;
    case msg::channel_failure: ++c.replies_failed; break;
    default: break;
  }
  if (!r.ok()) return fail(Errc::invalid_input, fmt::format("truncated message {} from the server", p.type));
  return {};
}

}  // namespace xcg::badinput
