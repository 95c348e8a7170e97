// The validated, immutable gateway configuration.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/public_key.h"

namespace xcg::config {

enum class Action { console, start, shutdown, reboot, destroy, sysrq };
inline constexpr Action kAllActions[] = {Action::console, Action::start,   Action::shutdown,
                                         Action::reboot,  Action::destroy, Action::sysrq};
std::string_view action_name(Action a);
std::optional<Action> parse_action(std::string_view name);
// True if `actions` holds `a`.
bool allows(const std::vector<Action>& actions, Action a);
// True if `key` is a SysRq key the customer may send (Action::sysrq): one of [0-9a-z].
bool valid_sysrq_key(char key);

enum class OnLogin { menu, console };
// hypervisor: xen. Which console of a domain: PV (console/tty), the HVM serial port
// (serial/0/tty), or auto: serial for HVM guests that have one, else PV (as `xl console`).
enum class XenConsole { automatic, pv, serial };
enum class HypervisorKind { sim, xen };

struct ListenAddress {
  std::string host;   // numeric IPv4 or IPv6 (without brackets)
  uint16_t port = 0;  // 0 = any free port (for tests)
  bool ipv6 = false;
  std::string text;       // as written, for messages
  std::string unix_path;  // set: a unix socket ("unix:/run/xcg/web.sock"), host and port unused
};

// Where a value came from, for messages ("FILE:LINE:COLUMN").
struct Location {
  std::string file;
  int line = 0;    // 1-based
  int column = 0;  // 1-based
  std::string str() const;
};

struct DomainKey {
  PublicKey key;
  Location where;
  bool readonly = false;  // sees the console, cannot type, no lifecycle actions
};

struct Domain {
  std::string name;
  Location where;  // the name in its file, for messages
  OnLogin on_login = OnLogin::menu;
  std::vector<Action> actions;  // in canonical order; default: all
  std::vector<DomainKey> keys;
  unsigned memory_mib = 512;
  unsigned vcpus = 1;
  std::string config_file;  // hypervisor: xen; for `xl create`; default /etc/xen/<name>.cfg
  XenConsole xen_console = XenConsole::automatic;  // YAML: console
  bool allows(Action a) const;
  // This domain's entry for a key (matched by its blob), or nullptr.
  const DomainKey* key_for(std::string_view blob) const;
};

// The console hub: scrollback ring, replay on attach, persistent per-domain console log.
struct ConsoleSettings {
  size_t scrollback_bytes = 256 * 1024;          // per domain ring; 4 KiB .. 64 MiB
  size_t replay_bytes = 64 * 1024;               // at most this much is replayed on attach; 0 .. scrollback
  std::string log_dir = "/var/log/xcg/console";  // "<log_dir>/<domain>.log"; "" = no log
  size_t log_max_bytes = 1024 * 1024;            // rotate to .1 past this; 4 KiB .. 1 GiB
};

// hypervisor: xen (the `xen:` section).
struct XenSettings {
  std::string toolstack = "/usr/sbin/xl";  // absolute; run with an argv, never a shell
  unsigned timeout_s = 30;                 // 1..600: per toolstack run, then SIGKILL
  std::string lock_dir = "/var/lock";      // Xen's XEN_LOCK_DIR (Debian), for xenconsole.<domid>
};

struct SimSettings {
  std::vector<std::string> guest_command;  // empty: the built-in fake guest
  bool autostart = true;                   // domains are running when the gateway starts
  unsigned shutdown_grace_ms = 5000;       // SIGTERM, then SIGKILL after this long
  // Tests: absolute path of a stand-in for `xl`, run (with xen.timeout) before each lifecycle
  // action and NMI, which happens only if it exits 0. Empty: none.
  std::string toolstack;
  // Set: no guests are run. Each domain's console is the existing tty <console_dir>/<name>
  // (a pty slave or a link to one, checked at load), opened as the Xen backend opens
  // xenconsoled's pty; the domain is console only (no lifecycle actions, no SysRq).
  std::string console_dir;
};

// Pre-authentication and session limits (OpenSSH's LoginGraceTime, MaxStartups, MaxAuthTries).
struct Limits {
  unsigned login_grace_s = 30;  // 1..3600: time from TCP accept to authenticated
  unsigned max_auth_tries = 6;  // 1..100: failed logins per connection before disconnect
  // 1..1000: refused key offers ("would you accept this key?", no signature) per connection.
  // Counted apart from max_auth_tries because an agent offers all its keys in turn.
  unsigned max_key_offers = 32;
  // MaxStartups "start:rate:full": with `start` unauthenticated connections open, new ones are
  // dropped with probability rate% rising linearly to 100% at `full`.
  unsigned startups_begin = 10;           // 1..10000
  unsigned startups_rate = 30;            // 1..100 (percent)
  unsigned startups_full = 100;           // >= startups_begin, <= 10000
  unsigned max_startups_per_source = 10;  // 1..10000 unauthenticated per source (network)
  // A source is the remote address cut to this prefix: one IPv6 customer holds a /64, and
  // anyone with one can change address within it at will.
  unsigned source_prefix_v4 = 32;         // 1..32
  unsigned source_prefix_v6 = 64;         // 1..128
  unsigned max_sessions_per_domain = 32;  // 1..10000 authenticated sessions per domain
  // 1..64: lifecycle and SysRq actions (each a root `xl` on Xen) running at once; more wait
  // their turn. Each session has at most one action in flight, each domain one running.
  unsigned max_actions = 8;
  unsigned idle_timeout_s = 0;  // 0 = off; else 1..604800: an attached viewer silent this long is closed
  // 0..64: xcg-session processes exec'd ahead of time, each parked until a connection is
  // handed to it with its hello (docs/architecture.md, "Spare sessions"). 0: exec on accept.
  // Two take the exec off sequential logins for about 3 MB.
  unsigned spare_sessions = 2;
};

// The browser console (docs/web.md). Absent from the file: no web listener.
struct WebSettings {
  // TLS listeners; a plain one ("http://127.0.0.1:8080") only on loopback, behind a proxy.
  std::vector<ListenAddress> listen;
  std::vector<ListenAddress> plain_listen;
  std::string tls_cert = "/var/lib/xcg/web.crt";  // PEM chain; both missing: made self-signed at start
  std::string tls_key = "/var/lib/xcg/web.key";   // mode 0600
  std::string public_url;                         // PublicUrl::normal; links, Host and Origin use it
  unsigned link_ttl_s = 60;                       // 1..600: lifetime of a link token
  std::string panel_secret_file;                  // "" = panel tokens refused
  std::vector<std::string> trusted_proxies;       // normalised CIDRs ("10.0.0.0/8"): X-Forwarded-For believed
};

// The Prometheus endpoint (docs/metrics.md). Absent from the file: none.
struct MetricsSettings {
  std::vector<ListenAddress> listen;  // loopback HOST:PORT or unix:PATH, plain HTTP
};

// `cluster:` (docs/fleet.md). Absent from the file: a single host, no etcd.
enum class ClusterRole { node, front };
struct ClusterSettings {
  ClusterRole role = ClusterRole::node;
  std::string node;                    // this process's name in nodes/; default: the host name
  std::vector<std::string> endpoints;  // "https://HOST:PORT" (or http:// on loopback), as written
  std::string ca_file;                 // "" = the system's CAs
  std::string cert_file, key_file;     // the TLS client pair: both or neither
  std::string prefix = "/xcg/";        // every key is under it; starts and ends with '/'
  unsigned lease_ttl_s = 5;            // 2..60: the node's lease in etcd
  std::string advertise;               // HOST:PORT fronts connect to; default: the first listen address
  bool operator==(const ClusterSettings&) const = default;
};

// A front a node trusts (`fronts:`), by its host key.
struct FrontKey {
  PublicKey key;
  Location where;
};

struct Config {
  std::string path;
  std::vector<std::string> source_files;      // every file read (main + included), absolute
  std::vector<std::string> watch_dirs;        // directories of include patterns, for reloads
  std::string run_as = "xcg";                 // user for session processes
  std::string chroot_dir = "/run/xcg/empty";  // empty directory sessions chroot into
  Limits limits;
  ConsoleSettings console;
  std::vector<ListenAddress> listen;
  std::vector<std::string> host_keys;
  HypervisorKind hypervisor = HypervisorKind::sim;
  std::string audit_log = "-";
  std::map<std::string, Domain> domains;
  SimSettings sim;
  XenSettings xen;
  std::optional<WebSettings> web;
  std::optional<ClusterSettings> cluster;
  std::optional<MetricsSettings> metrics;
  std::vector<FrontKey> fronts;  // a node's; none on a front

  bool is_front() const { return cluster && cluster->role == ClusterRole::front; }
  // The front (matched by its key's blob), or nullptr.
  const FrontKey* front_for_key(std::string_view blob) const;
  // The domain a key (matched by its blob) belongs to, or nullptr.
  const Domain* domain_for_key(std::string_view blob) const;

 private:
  friend class Loader;
  friend std::shared_ptr<Config> with_domain_keys(const Config&,
                                                  const std::map<std::string, std::vector<DomainKey>>&);
  friend void set_domain_keys(Config&, const std::string&, const std::vector<DomainKey>&);
  std::map<std::string, std::string, std::less<>> domain_by_blob_;
};

struct Problem {
  Location where;
  std::string message;
  std::string str() const;  // "FILE:LINE:COLUMN: message"
};

// Thrown by load_config; `problems` holds every problem found, in file order.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<Problem> problems);
  const std::vector<Problem>& problems() const { return problems_; }

 private:
  std::vector<Problem> problems_;
};

// Reads and validates a whole config file. Nothing is returned unless all of it is valid.
std::shared_ptr<const Config> load_config(const std::string& path);
// YAML files with `domains:` only, read as a config's included files are (`xcg keys import`).
std::shared_ptr<const Config> load_domain_files(const std::vector<std::string>& paths);
// A copy of `base` whose domains' keys are `keys`' (by domain name; a domain missing from it
// has none). A node keeps its own domains and ignores others'; a front's domains are those
// of `keys`, known by name only, with every action (the node enforces its own).
std::shared_ptr<Config> with_domain_keys(const Config& base,
                                         const std::map<std::string, std::vector<DomainKey>>& keys);
// One domain's keys changed in place, as with_domain_keys would have them (on a front, a
// domain left with no keys is gone). The other domains are not touched: a change of the key
// map costs what it changes, not the size of the map. No key may then be in two domains.
void set_domain_keys(Config& config, const std::string& domain, const std::vector<DomainKey>& keys);
// Same, from text (for tests); `path` is used in messages only.
std::shared_ptr<const Config> parse_config(const std::string& text, const std::string& path);

// [A-Za-z0-9][A-Za-z0-9_.-]{0,63}: safe in file names, xenstore paths and SSH user names.
bool valid_domain_name(std::string_view name);

// Parses "IPV4:PORT" or "[IPV6]:PORT": numeric addresses only, port 0..65535.
Result<ListenAddress> parse_listen_address(std::string_view text);

// True for 127.0.0.0/8 and ::1: where a plain HTTP listener may be.
bool is_loopback(const ListenAddress& address);

// web.public_url taken apart. `normal` is what the browser sends as the Origin: lower-case
// scheme and host, no default port, no trailing "/".
struct PublicUrl {
  bool https = true;
  std::string host;  // lower case; an IPv6 address without brackets
  bool ipv6 = false;
  bool ip = false;        // host is a numeric IPv4 or IPv6 address (for the certificate's SAN)
  uint16_t port = 0;      // 0 = the scheme's default
  std::string authority;  // HOST[:PORT] as the Host header carries it ("[::1]:8443")
  std::string normal;     // SCHEME://AUTHORITY
};

// "https://HOST[:PORT]" or "http://...", with at most a lone "/" after it: no path, query,
// fragment or user name. HOST is a DNS name, an IPv4 address or "[IPV6]".
Result<PublicUrl> parse_public_url(std::string_view text);

}  // namespace xcg::config
