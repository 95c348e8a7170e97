// Before authentication: the version exchange, packet framing and the key exchange.
#include <sys/socket.h>

#include <fmt/format.h>

#include "tests/badinput/cases.h"
#include "tests/badinput/wire.h"

namespace xcg::badinput {
namespace {

constexpr double kPromptly = 5;  // seconds the server may take to drop a broken connection

// A client that has sent its version and read the server's.
Result<Client> after_versions(const Env& env, Deadline deadline) {
  auto c = connect(env, deadline);
  if (!c) return c;
  if (auto r = c->send_version(deadline); !r) return tl::unexpected(r.error());
  if (auto r = c->read_version(deadline); !r) return tl::unexpected(r.error());
  return c;
}

// ... and the server's KEXINIT read, ours sent.
Result<Client> kexinit_exchanged(const Env& env, Deadline deadline, const KexOptions& options = {}) {
  auto c = after_versions(env, deadline);
  if (!c) return c;
  if (auto r = c->send_kexinit(options, deadline); !r) return tl::unexpected(r.error());
  if (auto r = c->read_kexinit(deadline); !r) return tl::unexpected(r.error());
  return c;
}

// Sends bytes the server may refuse half way; a closed connection is then the expected end.
Outcome send_then_expect_closed(Client& c, std::string_view bytes, const std::string& what) {
  if (auto r = c.send_raw(bytes, after(kPromptly)); !r && !closed_by_server(r.error()))
    return tl::unexpected(r.error());
  return expect_closed(c, kPromptly, what);
}

Outcome random_bytes_to_port(const Env& env, bool read_banner) {
  auto c = connect(env, after(5));
  if (!c) return tl::unexpected(c.error());
  if (read_banner) {
    auto line = c->read_line(after(5));
    if (!line) return tl::unexpected(line.error());
  }
  return send_then_expect_closed(*c, random_bytes(256 * 1024), "256 KiB of random bytes");
}

Outcome truncated_version(const Env& env, bool half_close) {
  auto c = connect(env, after(5));
  if (!c) return tl::unexpected(c.error());
  if (auto r = c->send_raw("SSH-2.0-trunc", after(5)); !r) return tl::unexpected(r.error());
  if (half_close) {
    if (::shutdown(c->fd(), SHUT_WR) != 0) return fail_errno("shutdown");
    return expect_closed(*c, kPromptly, "a version line cut short, then EOF");
  }
  // Nothing more comes: only the login grace time can end this one.
  return expect_closed(*c, env.login_grace_s + kPromptly, "a version line cut short, then silence");
}

Outcome plaintext_garbage_packets(const Env& env, bool unassigned_types_only) {
  auto deadline = after(15);
  auto c = kexinit_exchanged(env, deadline);
  if (!c) return tl::unexpected(c.error());
  for (int i = 0; i < 20; ++i) {
    uint8_t type = unassigned_types_only ? static_cast<uint8_t>(192 + i) : static_cast<uint8_t>(random_u32());
    std::string payload = Writer().byte(type).raw(random_bytes(random_u32() % 512)).bytes();
    if (auto r = c->send_packet(payload, deadline); !r)
      return closed_or(r.error(), "garbage packets during key exchange");
  }
  // Either the server gave up on us, or it ignored the garbage and the key exchange goes on.
  if (auto r = c->send_ecdh_init(deadline); !r)
    return closed_or(r.error(), "garbage packets during key exchange");
  if (auto r = c->finish_kex(deadline); !r)
    return closed_or(r.error(), "garbage packets during key exchange");
  if (auto r = c->request_service("ssh-userauth", deadline); !r)
    return closed_or(r.error(), "garbage packets during key exchange");
  auto ok = c->auth_publickey(env.user, env.key, deadline);
  if (!ok) return closed_or(ok.error(), "garbage packets during key exchange");
  if (!*ok) return misbehaved("after ignored garbage, the right key was refused");
  return status_works(*c, env,
                      fmt::format("garbage packets during key exchange were ignored ({} UNIMPLEMENTED)",
                                  c->unimplemented_count()));
}

Outcome framing(const Env& env, const std::string& bytes, const std::string& what, bool after_kex) {
  auto deadline = after(10);
  auto c = after_kex ? Result<Client>(ready_for_auth(env, deadline)) : after_versions(env, deadline);
  if (!c) return tl::unexpected(c.error());
  return send_then_expect_closed(*c, bytes, what);
}

Outcome refused_offer(const Env& env, const KexOptions& options, const std::string& what) {
  auto deadline = after(10);
  auto c = after_versions(env, deadline);
  if (!c) return tl::unexpected(c.error());
  if (auto r = c->send_kexinit(options, deadline); !r) return closed_or(r.error(), what);
  if (auto r = c->read_kexinit(deadline); !r) {
    if (closed_by_server(r.error())) return what + ": refused before the server's KEXINIT";
    return tl::unexpected(r.error());
  }
  if (auto r = c->send_ecdh_init(deadline); !r && !closed_by_server(r.error()))
    return tl::unexpected(r.error());
  auto reply = c->read_packet(deadline);
  if (reply) return misbehaved(fmt::format("{}: the server answered with message {}", what, reply->type));
  if (!closed_by_server(reply.error())) return tl::unexpected(reply.error());
  return fmt::format("{}: refused ({})", what, reply.error().message);
}

Outcome bad_ecdh_point(const Env& env, const std::string& point, const std::string& what) {
  auto deadline = after(10);
  auto c = kexinit_exchanged(env, deadline);
  if (!c) return tl::unexpected(c.error());
  if (auto r = c->send_packet(Writer().byte(msg::kex_ecdh_init).string(point).bytes(), deadline); !r)
    return closed_or(r.error(), what);
  auto reply = c->read_packet(deadline);
  if (reply) return misbehaved(fmt::format("{}: the server went on with message {}", what, reply->type));
  if (!closed_by_server(reply.error())) return tl::unexpected(reply.error());
  return fmt::format("{}: refused ({})", what, reply.error().message);
}

// "Strict kex" (OpenSSH's PROTOCOL file, against Terrapin): with both sides in strict mode,
// KEXINIT must be the first packet, and any message but the key exchange's own during the
// first key exchange ends the connection.
enum class Injected { before_kexinit, after_kexinit };

Outcome ignore_during_kex(const Env& env, bool strict, Injected when) {
  auto deadline = after(10);
  KexOptions options;
  options.strict = strict;
  auto c = after_versions(env, deadline);
  if (!c) return tl::unexpected(c.error());
  const std::string ignore = Writer().byte(msg::ignore).string("terrapin").bytes();
  std::string where = when == Injected::before_kexinit ? "before KEXINIT" : "after KEXINIT";
  auto done = [&]() -> Result<void> {
    if (when == Injected::before_kexinit) {
      if (auto r = c->send_packet(ignore, deadline); !r) return r;
    }
    if (auto r = c->send_kexinit(options, deadline); !r) return r;
    if (auto r = c->read_kexinit(deadline); !r) return r;
    if (when == Injected::after_kexinit) {
      if (auto r = c->send_packet(ignore, deadline); !r) return r;
    }
    if (auto r = c->send_ecdh_init(deadline); !r) return r;
    if (auto r = c->finish_kex(deadline); !r) return r;
    // libssh notices the violation when the key exchange ends, after its own NEWKEYS.
    return c->request_service("ssh-userauth", deadline);
  }();
  std::string mode = strict ? "strict kex" : "without strict kex";
  if (strict) {
    if (done)
      return misbehaved(
          fmt::format("{}: the server accepted SSH_MSG_IGNORE {} in the first key exchange", mode, where));
    if (!closed_by_server(done.error())) return tl::unexpected(done.error());
    return fmt::format("{}: SSH_MSG_IGNORE {} ended the connection ({})", mode, where, done.error().message);
  }
  if (!done)
    return misbehaved(
        fmt::format("{}: SSH_MSG_IGNORE {} broke the key exchange: {}", mode, where, done.error().message));
  return fmt::format("{}: SSH_MSG_IGNORE {} is ignored", mode, where);
}

std::string packet_header(uint32_t length, uint8_t padding) {
  return Writer().u32(length).byte(padding).bytes();
}

}  // namespace

std::vector<Case> stream_cases() {
  return {
      {"random-bytes", "256 KiB of random bytes after the server's banner",
       [](const Env& env) { return random_bytes_to_port(env, true); }},
      {"random-bytes-at-once", "256 KiB of random bytes before reading anything",
       [](const Env& env) { return random_bytes_to_port(env, false); }},
      {"random-lines", "lines of text that are not a version line",
       [](const Env& env) -> Outcome {
         auto c = connect(env, after(5));
         if (!c) return tl::unexpected(c.error());
         std::string lines;
         for (int i = 0; i < 2000; ++i) lines += "GET / HTTP/1.1 hello\r\n";
         return send_then_expect_closed(*c, lines, "2000 lines of not-SSH");
       }},
      {"truncated-version-eof", "half a version line, then EOF",
       [](const Env& env) { return truncated_version(env, true); }},
      {"truncated-version-stall", "half a version line, then nothing (login grace must end it)",
       [](const Env& env) { return truncated_version(env, false); }},
      {"long-version-line", "a 64 KiB version line",
       [](const Env& env) -> Outcome {
         auto c = connect(env, after(5));
         if (!c) return tl::unexpected(c.error());
         return send_then_expect_closed(*c, "SSH-2.0-" + std::string(64 * 1024, 'A') + "\r\n",
                                        "a 64 KiB version line");
       }},
      {"ssh1-version", "an SSH-1.5 client",
       [](const Env& env) -> Outcome {
         auto c = connect(env, after(5));
         if (!c) return tl::unexpected(c.error());
         return send_then_expect_closed(*c, "SSH-1.5-old\r\n", "SSH-1.5 version line");
       }},
      {"garbage-after-version", "16 KiB of random bytes after a valid version exchange",
       [](const Env& env) {
         return framing(env, random_bytes(16 * 1024), "random bytes instead of packets", false);
       }},
      {"unassigned-messages-in-kex",
       "well-framed packets of unassigned types 192..211 during the key exchange",
       [](const Env& env) { return plaintext_garbage_packets(env, true); }},
      {"garbage-packets-in-kex", "well-framed packets of random types and contents during the key exchange",
       [](const Env& env) { return plaintext_garbage_packets(env, false); }},
      {"padding-longer-than-packet", "a packet whose padding length exceeds its length",
       [](const Env& env) {
         return framing(env, packet_header(12, 255) + std::string(11, 'x'), "padding > length", false);
       }},
      {"zero-length-packet", "a packet of length 0",
       [](const Env& env) {
         return framing(env, packet_header(0, 0) + std::string(16, '\0'), "length 0", false);
       }},
      {"huge-length", "a packet claiming 4 GiB before the key exchange",
       [](const Env& env) {
         return framing(env, packet_header(0xfffffff0u, 4) + std::string(64, 'x'), "length 0xfffffff0",
                        false);
       }},
      {"huge-length-encrypted",
       "a packet claiming 2 GiB after the key exchange (the GCM length is clear text)",
       [](const Env& env) {
         return framing(env, Writer().u32(0x7ffffff0u).bytes() + random_bytes(64), "length 0x7ffffff0", true);
       }},
      {"bad-tag", "an encrypted packet whose authentication tag is wrong",
       [](const Env& env) {
         return framing(env, Writer().u32(32).bytes() + random_bytes(48), "wrong GCM tag", true);
       }},
      {"raw-garbage-after-kex", "4 KiB of random bytes after the key exchange",
       [](const Env& env) { return framing(env, random_bytes(4096), "random bytes after NEWKEYS", true); }},
      {"truncated-kexinit", "a KEXINIT that ends after its cookie",
       [](const Env& env) -> Outcome {
         auto deadline = after(10);
         auto c = after_versions(env, deadline);
         if (!c) return tl::unexpected(c.error());
         if (auto r = c->send_packet(Writer().byte(msg::kexinit).raw(random_bytes(16)).bytes(), deadline); !r)
           return closed_or(r.error(), "truncated KEXINIT");
         return expect_closed(*c, kPromptly, "truncated KEXINIT");
       }},
      {"huge-kexinit", "a KEXINIT with a 200 KiB algorithm list that ends in a valid one",
       [](const Env& env) -> Outcome {
         KexOptions options;
         options.kex.clear();
         while (options.kex.size() < 200 * 1024) options.kex += "curve25519-sha256-bogus,";
         options.kex += "curve25519-sha256";
         auto deadline = after(10);
         auto c = connect(env, deadline);
         if (!c) return tl::unexpected(c.error());
         if (auto r = c->handshake(deadline, options); !r)
           return closed_or(r.error(), "200 KiB algorithm list");
         return "200 KiB algorithm list: accepted, key exchange completed";
       }},
      {"kex-offer-group1-sha1", "a client offering only diffie-hellman-group1-sha1",
       [](const Env& env) {
         KexOptions o;
         o.kex = "diffie-hellman-group1-sha1";
         return refused_offer(env, o, "diffie-hellman-group1-sha1 only");
       }},
      {"kex-offer-zlib-only", "a client offering only zlib compression",
       [](const Env& env) {
         KexOptions o;
         o.compression = "zlib,zlib@openssh.com";
         return refused_offer(env, o, "zlib compression only");
       }},
      {"ecdh-short-point", "a 31-byte curve25519 public value",
       [](const Env& env) { return bad_ecdh_point(env, random_bytes(31), "31-byte public value"); }},
      {"ecdh-zero-point", "the all-zero curve25519 public value (shared secret 0)",
       [](const Env& env) { return bad_ecdh_point(env, std::string(32, '\0'), "all-zero public value"); }},
      {"ecdh-huge-point", "a 64 KiB curve25519 public value",
       [](const Env& env) { return bad_ecdh_point(env, random_bytes(64 * 1024), "64 KiB public value"); }},
      {"newkeys-before-kex", "NEWKEYS right after KEXINIT",
       [](const Env& env) -> Outcome {
         auto deadline = after(10);
         auto c = kexinit_exchanged(env, deadline);
         if (!c) return tl::unexpected(c.error());
         if (auto r = c->send_packet(Writer().byte(msg::newkeys).bytes(), deadline); !r)
           return closed_or(r.error(), "NEWKEYS before the key exchange");
         return expect_closed(*c, kPromptly, "NEWKEYS before the key exchange");
       }},
      {"strict-kex-ignore-first", "with strict kex, SSH_MSG_IGNORE before KEXINIT (Terrapin)",
       [](const Env& env) { return ignore_during_kex(env, true, Injected::before_kexinit); }},
      {"strict-kex-ignore", "with strict kex, SSH_MSG_IGNORE after KEXINIT, before NEWKEYS (Terrapin)",
       [](const Env& env) { return ignore_during_kex(env, true, Injected::after_kexinit); }},
      {"nonstrict-kex-ignore", "without strict kex, SSH_MSG_IGNORE during the key exchange (control)",
       [](const Env& env) { return ignore_during_kex(env, false, Injected::after_kexinit); }},
      {"rekey-flood", "500 KEXINITs after the key exchange, never finishing a re-key",
       [](const Env& env) -> Outcome {
         auto deadline = after(15);
         auto c = ready_for_auth(env, deadline);
         if (!c) return tl::unexpected(c.error());
         for (int i = 0; i < 500; ++i) {
           if (auto r = c->send_kexinit({}, deadline); !r) return closed_or(r.error(), "500 KEXINITs");
         }
         // A KEXINIT while a re-key is already running is a protocol error.
         return expect_closed(*c, kPromptly, "500 KEXINITs");
       }},
  };
}

}  // namespace xcg::badinput
