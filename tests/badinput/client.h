// A small SSH client over a raw TCP socket that does each protocol step separately, so a bad
// input case can stop, skip or corrupt any step: version exchange, curve25519-sha256 key
// exchange (ssh-ed25519 host key, aes256-gcm@openssh.com), public-key authentication with an
// Ed25519 key, and session channels. Every read waits until a deadline and no longer.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "tests/badinput/crypto.h"

namespace xcg::badinput {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;
Deadline after(double seconds);

namespace msg {
enum : uint8_t {
  disconnect = 1,
  ignore = 2,
  unimplemented = 3,
  debug = 4,
  service_request = 5,
  service_accept = 6,
  kexinit = 20,
  newkeys = 21,
  kex_ecdh_init = 30,
  kex_ecdh_reply = 31,
  userauth_request = 50,
  userauth_failure = 51,
  userauth_success = 52,
  userauth_banner = 53,
  userauth_pk_ok = 60,
  global_request = 80,
  request_success = 81,
  request_failure = 82,
  channel_open = 90,
  channel_open_confirmation = 91,
  channel_open_failure = 92,
  channel_window_adjust = 93,
  channel_data = 94,
  channel_extended_data = 95,
  channel_eof = 96,
  channel_close = 97,
  channel_request = 98,
  channel_success = 99,
  channel_failure = 100,
};
}  // namespace msg

// Why a read ended without a packet: the server closed (EOF, reset or SSH_MSG_DISCONNECT).
inline bool closed_by_server(const Error& e) { return e.code == Errc::unavailable; }

struct Packet {
  uint8_t type = 0;
  std::string payload;  // starting with the type byte
};

struct KexOptions {
  bool strict = false;  // offer kex-strict-c-v00@openssh.com (Terrapin countermeasure)
  std::string compression = "none";
  std::string kex = "curve25519-sha256";  // another offer can only be for a refusal test
};

struct ChannelState {
  uint32_t remote = 0;
  bool confirmed = false;
  bool refused = false;  // SSH_MSG_CHANNEL_OPEN_FAILURE
  std::string out;
  std::string err;
  std::optional<uint32_t> exit_status;
  bool eof = false;
  bool closed = false;  // the server sent CLOSE
  bool close_sent = false;
  int replies_ok = 0;
  int replies_failed = 0;
};

class Client {
 public:
  static Result<Client> connect(uint16_t port, Deadline deadline);

  int fd() const { return fd_.get(); }
  const std::string& server_version() const { return server_version_; }
  const std::string& server_kexinit() const { return server_kexinit_; }
  bool encrypted() const { return out_cipher_.has_value(); }
  // Seconds since the TCP connection was made.
  double age() const { return std::chrono::duration<double>(Clock::now() - connected_at_).count(); }

  // --- the byte stream ---
  Result<void> send_raw(std::string_view bytes, Deadline deadline);
  Result<std::string> read_line(Deadline deadline);  // without the line end
  // Succeeds once the server has closed the connection; discards whatever it still sends.
  Result<void> wait_closed(Deadline deadline);
  // Close with a TCP reset instead of a FIN.
  void reset();
  void close() { fd_.reset(); }

  // --- packets ---
  Result<void> send_packet(std::string_view payload, Deadline deadline);
  Result<Packet> read_packet(Deadline deadline);
  // The next packet that is not IGNORE, DEBUG or UNIMPLEMENTED (those are counted).
  Result<Packet> read_significant(Deadline deadline);

  // --- protocol steps ---
  Result<void> send_version(Deadline deadline);
  Result<void> read_version(Deadline deadline);
  Result<void> send_kexinit(const KexOptions& options, Deadline deadline);
  Result<void> read_kexinit(Deadline deadline);
  Result<void> send_ecdh_init(Deadline deadline);
  Result<void> finish_kex(Deadline deadline);  // reads the reply, checks it, NEWKEYS both ways
  Result<void> handshake(Deadline deadline, const KexOptions& options = {});
  Result<void> request_service(std::string_view name, Deadline deadline);

  // The USERAUTH request for a key, signed for this session (or a probe without signature).
  std::string publickey_request(std::string_view user, const Ed25519Key& key, bool sign) const;
  // Sends the signed request; true on success, false if refused.
  Result<bool> auth_publickey(std::string_view user, const Ed25519Key& key, Deadline deadline);
  // handshake + ssh-userauth + auth_publickey; an error if the key is refused.
  Result<void> login(std::string_view user, const Ed25519Key& key, Deadline deadline);

  // --- channels ---
  // Sends CHANNEL_OPEN "session"; returns our channel number.
  Result<uint32_t> send_open_session(Deadline deadline);
  // Opens one and waits for the answer; an error with Errc::not_allowed if refused.
  Result<uint32_t> open_session(Deadline deadline);
  Result<void> send_request(uint32_t channel, std::string_view type, bool want_reply,
                            std::string_view type_specific, Deadline deadline);
  Result<void> send_data(uint32_t channel, std::string_view data, Deadline deadline);
  Result<void> send_close(uint32_t channel, Deadline deadline);
  ChannelState& channel(uint32_t id) { return channels_[id]; }

  // Reads and handles packets until `done()` or the deadline. Channel messages update
  // channel(id); authentication answers are counted in auth_answers().
  Result<void> pump_until(Deadline deadline, const std::function<bool()>& done);
  const std::vector<uint8_t>& auth_answers() const { return auth_answers_; }
  int unimplemented_count() const { return unimplemented_; }

  // Runs `command` on a fresh channel to its end; the channel's state holds the result.
  Result<uint32_t> exec(std::string_view command, Deadline deadline);

 private:
  explicit Client(UniqueFd fd) : fd_(std::move(fd)) {}
  Result<void> fill(size_t n, Deadline deadline);
  std::string consume(size_t n);
  Result<void> handle(const Packet& p, Deadline deadline);

  UniqueFd fd_;
  Clock::time_point connected_at_ = Clock::now();
  std::string in_;
  std::string client_version_ = "SSH-2.0-xcg_badinput";
  std::string server_version_;
  std::string client_kexinit_;
  std::string server_kexinit_;
  std::optional<X25519> ephemeral_;
  std::string session_id_;
  std::optional<GcmDirection> out_cipher_;
  std::optional<GcmDirection> in_cipher_;
  std::map<uint32_t, ChannelState> channels_;
  uint32_t next_channel_ = 0;
  std::vector<uint8_t> auth_answers_;
  int unimplemented_ = 0;
};

// Text for messages: printable ASCII kept, the rest as \xNN, cut at `max` characters.
std::string printable(std::string_view bytes, size_t max = 120);

}  // namespace xcg::badinput
