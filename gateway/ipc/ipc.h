// The typed request set between a session process and the broker (OpenSSH's monitor idea).
//
// Transport: one AF_UNIX SOCK_SEQPACKET socketpair per session, one message per packet,
// at most kMaxFrame bytes. Frame: u8 type, then the fields in the order of the message's
// `fields` list, which alone defines its layout for both encode and decode: u8 and bool (0/1)
// one byte, u32 four big-endian, an enum one byte, a string u32 length + bytes, a vector u32
// count + its elements. Each message also names its type number and name once. Requests have
// even type numbers, answers odd ones. A session may only ask for its own domain: the broker
// remembers which domain it authorized.
#pragma once

#include <array>
#include <cstdint>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "config/config.h"

namespace xcg::gateway::ipc {

inline constexpr size_t kMaxFrame = 64 * 1024;
// Raised whenever a message's fields change or a message is added. The hello carries it first, so that a
// session program newer or older than the broker (a package upgraded, the service not yet restarted) stops
// with a clear reason instead of misreading the fields.
inline constexpr uint32_t kProtocolVersion = 7;
inline constexpr size_t kMaxString = 48 * 1024;

enum class Type : uint8_t {
  hello = 1,          // broker -> session, once, first: what the session needs to run SSH
  log = 2,            // session -> broker: a diagnostic record
  authorize_req = 4,  // "may this key log in as this user?"
  authorize_ans = 5,
  status_req = 6,
  status_ans = 7,
  action_req = 8,  // start / shutdown / reboot / destroy
  action_ans = 9,
  attach_req = 10,  // attach to the console; the answer carries a socket to the hub
  attach_ans = 11,
  log_req = 12,  // the recent console log
  log_ans = 13,
  who_req = 14,  // who is attached to this domain's console
  who_ans = 15,
  sysrq_req = 16,          // SysRq key (or NMI); answered with action_ans
  revoke = 17,             // broker -> session, unsolicited: say `text` to the customer and end
  narrowed = 19,           // broker -> session, unsolicited: the key's rights shrank (a reload)
  web_authorize_req = 20,  // "may this browser console token log in?" (xcg-web); answered by authorize_ans
  weblink_req = 22,        // a one-time browser console link for the session's domain
  weblink_ans = 23,
  node_connect_req = 24,  // a front's session: a TCP connection to the node running its domain
  node_connect_ans = 25,
  metrics_req = 26,  // a metrics session (xcg-web serving the Prometheus endpoint): the metrics text
  metrics_ans = 27,
  front_key = 29,  // broker -> a front's xcg-web, right after the answer that accepted its token
};

struct Hello {
  std::vector<std::string> host_keys_pem;
  // The sandbox: drop to uid/gid and chroot, unless the broker itself is not root.
  bool drop_privileges = false;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string chroot_dir;
  uint32_t login_grace_s = config::Limits{}.login_grace_s;
  uint32_t max_auth_tries = config::Limits{}.max_auth_tries;
  uint32_t max_key_offers = config::Limits{}.max_key_offers;
  uint32_t idle_timeout_s = config::Limits{}.idle_timeout_s;  // 0 = off
  uint32_t protocol = kProtocolVersion;                       // first on the wire (see kProtocolVersion)
  // xcg-web only (docs/web.md): its TLS pair (empty on a plain listener behind a proxy), the
  // URL whose Host and Origin it accepts, and whether the peer is a trusted proxy whose
  // X-Forwarded-For names the client.
  std::string tls_chain_pem;
  std::string tls_key_pem;
  std::string public_url;
  bool trust_forwarded_for = false;
  // The broker is a fleet's front (docs/fleet.md): a logged-in customer is relayed to a node.
  bool front = false;
  // xcg-web serves the metrics endpoint (docs/metrics.md): GET /metrics, nothing else.
  bool metrics = false;
  static constexpr Type type = Type::hello;
  static constexpr std::string_view name = "hello";
  static constexpr auto fields = std::tuple{&Hello::protocol,
                                            &Hello::host_keys_pem,
                                            &Hello::drop_privileges,
                                            &Hello::uid,
                                            &Hello::gid,
                                            &Hello::chroot_dir,
                                            &Hello::login_grace_s,
                                            &Hello::max_auth_tries,
                                            &Hello::max_key_offers,
                                            &Hello::idle_timeout_s,
                                            &Hello::tls_chain_pem,
                                            &Hello::tls_key_pem,
                                            &Hello::public_url,
                                            &Hello::trust_forwarded_for,
                                            &Hello::front,
                                            &Hello::metrics};
  bool operator==(const Hello&) const = default;
};
struct LogRecord {
  uint8_t level = 1;  // log::Level
  std::string text;
  static constexpr Type type = Type::log;
  static constexpr std::string_view name = "log";
  static constexpr auto fields = std::tuple{&LogRecord::level, &LogRecord::text};
  bool operator==(const LogRecord&) const = default;
};
struct AuthorizeReq {
  std::string user;           // the requested domain
  std::string key_type;       // e.g. "ssh-ed25519"
  std::string key_base64;     // the public key blob, base64 as in authorized_keys
  bool signature_ok = false;  // false: a probe; true: libssh verified the signature
  static constexpr Type type = Type::authorize_req;
  static constexpr std::string_view name = "authorize_req";
  static constexpr auto fields = std::tuple{&AuthorizeReq::user, &AuthorizeReq::key_type,
                                            &AuthorizeReq::key_base64, &AuthorizeReq::signature_ok};
  bool operator==(const AuthorizeReq&) const = default;
};
struct AuthorizeAns {
  bool ok = false;
  std::string domain;
  bool console_on_login = false;
  std::vector<config::Action> actions;
  std::string fingerprint;
  bool readonly = false;  // view the console only: no input, no actions
  static constexpr Type type = Type::authorize_ans;
  static constexpr std::string_view name = "authorize_ans";
  static constexpr auto fields =
      std::tuple{&AuthorizeAns::ok,      &AuthorizeAns::domain,      &AuthorizeAns::console_on_login,
                 &AuthorizeAns::actions, &AuthorizeAns::fingerprint, &AuthorizeAns::readonly};
  bool operator==(const AuthorizeAns&) const = default;
};
struct StatusReq {
  static constexpr Type type = Type::status_req;
  static constexpr std::string_view name = "status_req";
  static constexpr auto fields = std::tuple{};
  bool operator==(const StatusReq&) const = default;
};
struct StatusAns {
  bool ok = false;
  std::string text;  // the status line, or the reason it is unavailable
  static constexpr Type type = Type::status_ans;
  static constexpr std::string_view name = "status_ans";
  static constexpr auto fields = std::tuple{&StatusAns::ok, &StatusAns::text};
  bool operator==(const StatusAns&) const = default;
};
struct ActionReq {
  config::Action action = config::Action::start;
  static constexpr Type type = Type::action_req;
  static constexpr std::string_view name = "action_req";
  static constexpr auto fields = std::tuple{&ActionReq::action};
  bool operator==(const ActionReq&) const = default;
};
struct ActionAns {
  bool ok = false;
  std::string text;  // one line for the customer
  static constexpr Type type = Type::action_ans;
  static constexpr std::string_view name = "action_ans";
  static constexpr auto fields = std::tuple{&ActionAns::ok, &ActionAns::text};
  bool operator==(const ActionAns&) const = default;
};
struct AttachReq {
  static constexpr Type type = Type::attach_req;
  static constexpr std::string_view name = "attach_req";
  static constexpr auto fields = std::tuple{};
  bool operator==(const AttachReq&) const = default;
};
struct AttachAns {
  bool ok = false;
  std::string text;  // the reason on failure
  static constexpr Type type = Type::attach_ans;
  static constexpr std::string_view name = "attach_ans";
  static constexpr auto fields = std::tuple{&AttachAns::ok, &AttachAns::text};
  bool operator==(const AttachAns&) const = default;
};

struct LogReq {
  uint32_t lines = 100;
  static constexpr Type type = Type::log_req;
  static constexpr std::string_view name = "log_req";
  static constexpr auto fields = std::tuple{&LogReq::lines};
  bool operator==(const LogReq&) const = default;
};
struct LogAns {
  bool ok = false;
  std::string text;  // the log's last lines, or the reason there are none
  static constexpr Type type = Type::log_ans;
  static constexpr std::string_view name = "log_ans";
  static constexpr auto fields = std::tuple{&LogAns::ok, &LogAns::text};
  bool operator==(const LogAns&) const = default;
};
struct WhoReq {
  static constexpr Type type = Type::who_req;
  static constexpr std::string_view name = "who_req";
  static constexpr auto fields = std::tuple{};
  bool operator==(const WhoReq&) const = default;
};
struct WhoAns {
  std::vector<std::string> viewers;  // one line each: "alice@laptop, since 10:02:11 UTC"
  static constexpr Type type = Type::who_ans;
  static constexpr std::string_view name = "who_ans";
  static constexpr auto fields = std::tuple{&WhoAns::viewers};
  bool operator==(const WhoAns&) const = default;
};
struct SysrqReq {
  uint8_t key = 0;  // a SysRq key [0-9a-z], or 0 for an NMI
  static constexpr Type type = Type::sysrq_req;
  static constexpr std::string_view name = "sysrq_req";
  static constexpr auto fields = std::tuple{&SysrqReq::key};
  bool operator==(const SysrqReq&) const = default;
};

// A node's session ends with this exit status, and no line, when its domain migrated away and
// a front relays it; the front reattaches (EX_TEMPFAIL: nothing else a node runs exits so).
inline constexpr int kExitMoved = 75;

struct Revoke {
  std::string text;  // "access to web1 was revoked"
  // The domain migrated away and a front relays this session: it ends without a line, with
  // kExitMoved, so that the front reattaches its customer to the new node.
  bool handover = false;
  static constexpr Type type = Type::revoke;
  static constexpr std::string_view name = "revoke";
  static constexpr auto fields = std::tuple{&Revoke::text, &Revoke::handover};
  bool operator==(const Revoke&) const = default;
};

// What a reload took away from a logged-in session, at once: the broker already enforces it
// (the hub drops a read-only viewer's input, detaches a withdrawn console); the session stops
// offering it.
struct Narrowed {
  bool readonly = false;           // the key may now only watch
  bool console_withdrawn = false;  // the domain no longer allows `console`
  std::string text;                // "your access to web1 is now read-only"
  static constexpr Type type = Type::narrowed;
  static constexpr std::string_view name = "narrowed";
  static constexpr auto fields =
      std::tuple{&Narrowed::readonly, &Narrowed::console_withdrawn, &Narrowed::text};
  bool operator==(const Narrowed&) const = default;
};

// The first WebSocket message of a browser console: a link or panel token. Never logged.
struct WebAuthorizeReq {
  std::string token;
  std::string forwarded_for;  // the client's address from a trusted proxy's X-Forwarded-For, or ""
  std::string user_agent;     // for the audit log, cut to 200 printable bytes by the broker
  static constexpr Type type = Type::web_authorize_req;
  static constexpr std::string_view name = "web_authorize_req";
  static constexpr auto fields =
      std::tuple{&WebAuthorizeReq::token, &WebAuthorizeReq::forwarded_for, &WebAuthorizeReq::user_agent};
  bool operator==(const WebAuthorizeReq&) const = default;
};
struct WeblinkReq {
  static constexpr Type type = Type::weblink_req;
  static constexpr std::string_view name = "weblink_req";
  static constexpr auto fields = std::tuple{};
  bool operator==(const WeblinkReq&) const = default;
};
struct WeblinkAns {
  bool ok = false;
  std::string text;  // the link, or why there is none
  static constexpr Type type = Type::weblink_ans;
  static constexpr std::string_view name = "weblink_ans";
  static constexpr auto fields = std::tuple{&WeblinkAns::ok, &WeblinkAns::text};
  bool operator==(const WeblinkAns&) const = default;
};

// Asked by a front's session once its customer asked for a shell or a command: sessions cannot
// open sockets, so the broker connects and passes the socket with the answer.
struct NodeConnectReq {
  // Empty the first time. After the node ended the relay because the domain migrated away
  // (docs/fleet.md, "Migration"): that node; the broker waits for the registry to name another.
  std::string moved_from;
  static constexpr Type type = Type::node_connect_req;
  static constexpr std::string_view name = "node_connect_req";
  static constexpr auto fields = std::tuple{&NodeConnectReq::moved_from};
  bool operator==(const NodeConnectReq&) const = default;
};
struct NodeConnectAns {
  bool ok = false;
  std::string text;                  // why not, for the customer ("web1 is not running on any node")
  std::string node;                  // the node's name
  std::string host_key_fingerprint;  // "SHA256:...", the registry's: the session pins it
  static constexpr Type type = Type::node_connect_ans;
  static constexpr std::string_view name = "node_connect_ans";
  static constexpr auto fields = std::tuple{&NodeConnectAns::ok, &NodeConnectAns::text, &NodeConnectAns::node,
                                            &NodeConnectAns::host_key_fingerprint};
  bool operator==(const NodeConnectAns&) const = default;
};

// A metrics session's one question: the broker's metrics, rendered (Prometheus text format 0.0.4).
struct MetricsReq {
  static constexpr Type type = Type::metrics_req;
  static constexpr std::string_view name = "metrics_req";
  static constexpr auto fields = std::tuple{};
  bool operator==(const MetricsReq&) const = default;
};
struct MetricsAns {
  std::string text;
  static constexpr Type type = Type::metrics_ans;
  static constexpr std::string_view name = "metrics_ans";
  static constexpr auto fields = std::tuple{&MetricsAns::text};
  bool operator==(const MetricsAns&) const = default;
};

// The front's host keys, with which its xcg-web logs in to the nodes (docs/web.md, "Through a
// front"): sent only once a token was accepted, never in the hello, so that a process taken over
// by its network input before that never holds them.
struct FrontKey {
  std::vector<std::string> host_keys_pem;
  static constexpr Type type = Type::front_key;
  static constexpr std::string_view name = "front_key";
  static constexpr auto fields = std::tuple{&FrontKey::host_keys_pem};
  bool operator==(const FrontKey&) const = default;
};

using Message = std::variant<Hello, LogRecord, AuthorizeReq, AuthorizeAns, StatusReq, StatusAns, ActionReq,
                             ActionAns, AttachReq, AttachAns, LogReq, LogAns, WhoReq, WhoAns, SysrqReq,
                             Revoke, Narrowed, WebAuthorizeReq, WeblinkReq, WeblinkAns, NodeConnectReq,
                             NodeConnectAns, MetricsReq, MetricsAns, FrontKey>;

// The type byte of each alternative of Message, in its order.
inline constexpr auto kMessageTypes = []<size_t... I>(std::index_sequence<I...>) {
  return std::array{std::variant_alternative_t<I, Message>::type...};
}
(std::make_index_sequence<std::variant_size_v<Message>>{});

// The type byte of the alternative T (e.g. type_of_v<StatusReq> == Type::status_req).
template <class T>
inline constexpr Type type_of_v = T::type;
// Requests (session -> broker) have even type numbers.
template <class T>
inline constexpr bool is_request_v = static_cast<uint8_t>(type_of_v<T>) % 2 == 0;

Type type_of(const Message& m);
std::string_view type_name(Type t);

std::string encode(const Message& m);
// Rejects unknown types, truncated or trailing bytes, oversized strings and bad enum values.
Result<Message> decode(std::string_view frame);

struct Received {
  Message message;
  UniqueFd fd;  // a descriptor passed with the message (attach_ans, node_connect_ans), if any
};

// Sends one message (and optionally one descriptor). EAGAIN is an error, not retried.
Result<void> send(int sock, const Message& m, int pass_fd = -1);
// Receives one message. Errc::peer_closed means the peer closed the socket; a frame larger
// than kMaxFrame, more than one descriptor, or a malformed frame is invalid_input.
Result<Received> receive(int sock);

// The buffer receive() reads into, one per thread and reused: it keeps the bytes of the last
// large message (the hello's host keys) until overwritten or wiped.
std::span<const char> receive_buffer();
void wipe_receive_buffer() noexcept;

}  // namespace xcg::gateway::ipc
