#include "gateway/broker/web_tokens.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <array>
#include <stdexcept>

#include "base/wipe.h"
#include "config/config.h"

namespace xcg::gateway {
namespace {

using std::chrono::system_clock;
using Digest = std::array<unsigned char, 32>;

constexpr std::string_view kPanelPrefix = "v1~";
constexpr char kSeparator = '~';
constexpr std::string_view kMacContext = "xcg-weblink-v1\n";
// Longer than any well-formed token (a panel token is at most ~175 bytes): anything longer
// is refused before it is parsed, so garbage costs no more than a length check.
constexpr size_t kMaxTokenBytes = 256;
constexpr size_t kLinkBytes = 32;
constexpr size_t kMinNonceBytes = 16;
constexpr size_t kMaxNonceBytes = 32;
constexpr size_t kMaxExpiryDigits = 12;
constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

tl::unexpected<Error> refuse(Errc code, std::string reason) { return fail(code, std::move(reason)); }

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

std::string base64url(std::string_view data) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : data) {
    acc = (acc << 8 | b) & 0xffff;
    for (bits += 8; bits >= 6; bits -= 6) out += kAlphabet[(acc >> (bits - 6)) & 63];
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}

int base64url_value(char c) {
  auto at = kAlphabet.find(c);
  return at == std::string_view::npos ? -1 : static_cast<int>(at);
}

// Unpadded base64url, strictly: the unused low bits of the last character must be zero, so
// each byte string has exactly one text (a nonce cannot be replayed under another spelling).
std::optional<std::string> decode_base64url(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = base64url_value(c);
    if (v < 0) return std::nullopt;
    acc = acc << 6 | static_cast<uint32_t>(v);
    bits += 6;
    if (bits < 8) continue;
    bits -= 8;
    out += static_cast<char>(acc >> bits);
    acc &= (1u << bits) - 1;
  }
  if (acc != 0) return std::nullopt;
  return out;
}

Result<std::string> sha256(std::string_view data) {
  Digest d{};
  unsigned len = 0;
  if (EVP_Digest(data.data(), data.size(), d.data(), &len, EVP_sha256(), nullptr) != 1)
    return refuse(Errc::system, "SHA-256 failed");
  return std::string(reinterpret_cast<const char*>(d.data()), len);
}

struct PanelToken {
  std::string_view domain;
  std::string_view mode;    // "r" or "w"
  std::string_view expiry;  // decimal text, as MACed
  std::string_view nonce;   // base64url text, as MACed
  std::string_view mac;     // base64url text
};

// The five fields after the prefix; exactly five, none empty.
std::optional<PanelToken> split_panel(std::string_view rest) {
  std::array<std::string_view, 5> f;
  for (size_t i = 0; i < f.size(); ++i) {
    auto end = rest.find(kSeparator);
    if ((end == std::string_view::npos) != (i + 1 == f.size())) return std::nullopt;
    f[i] = rest.substr(0, end);
    if (f[i].empty()) return std::nullopt;
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
  }
  return PanelToken{f[0], f[1], f[2], f[3], f[4]};
}

// Decimal seconds, no sign and no leading zero: one text per value.
std::optional<int64_t> parse_expiry(std::string_view text) {
  if (text.size() > kMaxExpiryDigits || text[0] == '0') return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

bool nonce_ok(std::string_view text) {
  auto raw = decode_base64url(text);
  return raw && raw->size() >= kMinNonceBytes && raw->size() <= kMaxNonceBytes;
}

std::optional<PanelToken> parse_panel(std::string_view token) {
  auto t = split_panel(token.substr(kPanelPrefix.size()));
  if (!t || !config::valid_domain_name(t->domain)) return std::nullopt;
  if (t->mode != "r" && t->mode != "w") return std::nullopt;
  if (!parse_expiry(t->expiry) || !nonce_ok(t->nonce)) return std::nullopt;
  return t;
}

// Every field ends in '\n', which no field may contain: one message per field tuple.
std::string mac_message(const PanelToken& t) {
  std::string m(kMacContext);
  for (auto field : {t.domain, t.mode, t.expiry, t.nonce}) (m += field) += '\n';
  return m;
}

using MacCtx = std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)>;

Result<Digest> hmac_sha256(EVP_MAC* hmac, std::string_view key, std::string_view message) {
  MacCtx ctx(EVP_MAC_CTX_new(hmac), EVP_MAC_CTX_free);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  Digest out{};
  size_t len = 0;
  if (!ctx || EVP_MAC_init(ctx.get(), bytes(key), key.size(), params) != 1 ||
      EVP_MAC_update(ctx.get(), bytes(message), message.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1 || len != out.size())
    return refuse(Errc::system, "HMAC-SHA256 failed");
  return out;
}

int64_t unix_seconds(system_clock::time_point t) {
  return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

void WebTokens::MacFree::operator()(EVP_MAC* mac) const { EVP_MAC_free(mac); }

WebTokens::WebTokens(std::optional<std::string> panel_secret, WebTokenLimits limits, Clock clock)
    : secret_(std::move(panel_secret)),
      hmac_(EVP_MAC_fetch(nullptr, "HMAC", nullptr)),
      limits_(limits),
      clock_(std::move(clock)) {
  if (secret_ && secret_->size() < kMinSecretBytes) {
    wipe(*secret_);
    throw std::invalid_argument("the panel secret must be at least 32 bytes");
  }
  if (!hmac_) throw std::runtime_error("OpenSSL offers no HMAC");
}

WebTokens::~WebTokens() {
  if (secret_) wipe(*secret_);
}

Result<std::string> WebTokens::mint(std::string_view domain, bool readonly, std::chrono::seconds ttl,
                                    std::string_view issuer) {
  purge();
  if (!config::valid_domain_name(domain)) return refuse(Errc::invalid_input, "not a domain name");
  if (ttl < std::chrono::seconds(1) || ttl > limits_.max_ttl)
    return refuse(Errc::invalid_input, "link lifetime out of range");
  if (links_.full(limits_.max_remembered))
    return refuse(Errc::unavailable, "too many pending links (max_remembered)");
  std::string raw(kLinkBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), kLinkBytes) != 1)
    return refuse(Errc::system, "no random bytes for a link");
  auto digest = sha256(raw);
  auto token = base64url(raw);
  wipe(raw);
  if (!digest) return tl::unexpected(digest.error());
  links_.insert(std::move(*digest),
                {clock_() + ttl, Grant{std::string(domain), readonly, GrantKind::link, std::string(issuer)}});
  return token;
}

Result<Grant> WebTokens::redeem(std::string_view token) {
  purge();
  if (token.size() > kMaxTokenBytes) return refuse(Errc::invalid_input, "token too long");
  if (token.starts_with(kPanelPrefix)) return redeem_panel(token);
  return redeem_link(token);
}

// The table is searched by the token's digest, so lookup timing tells nothing about tokens.
Result<Grant> WebTokens::redeem_link(std::string_view token) {
  auto raw = decode_base64url(token);
  if (!raw || raw->size() != kLinkBytes) return refuse(Errc::invalid_input, "malformed token");
  auto digest = sha256(*raw);
  wipe(*raw);
  if (!digest) return tl::unexpected(digest.error());
  auto entry = links_.take(*digest);
  if (!entry) return refuse(Errc::not_allowed, "unknown, used or expired link");
  return entry->grant;
}

Result<Grant> WebTokens::redeem_panel(std::string_view token) {
  auto t = parse_panel(token);
  if (!t) return refuse(Errc::invalid_input, "malformed panel token");
  if (!secret_) return refuse(Errc::not_allowed, "panel tokens are not configured");
  auto mac = hmac_sha256(hmac_.get(), *secret_, mac_message(*t));
  if (!mac) return tl::unexpected(mac.error());
  auto given = decode_base64url(t->mac);
  if (!given || given->size() != mac->size() || CRYPTO_memcmp(given->data(), mac->data(), mac->size()) != 0)
    return refuse(Errc::not_allowed, "panel token MAC mismatch");
  int64_t expiry = *parse_expiry(t->expiry);
  if (auto ok = check_expiry(expiry); !ok) return tl::unexpected(ok.error());
  std::string nonce(t->nonce);
  if (nonces_.contains(nonce)) return refuse(Errc::not_allowed, "panel nonce already used");
  if (nonces_.full(limits_.max_remembered))
    return refuse(Errc::unavailable, "panel nonce store full (max_remembered)");
  Grant grant{std::string(t->domain), t->mode == "r", GrantKind::panel};
  nonces_.insert(std::move(nonce), {system_clock::time_point(std::chrono::seconds(expiry)), grant});
  return grant;
}

// No allowance for clock skew: the panel's link lifetime (60 s by default) absorbs the
// sub-second skew of NTP-synchronised hosts.
Result<void> WebTokens::check_expiry(int64_t expiry) const {
  int64_t now = unix_seconds(clock_());
  if (expiry <= now) return refuse(Errc::not_allowed, "panel token expired");
  if (expiry - now > limits_.max_ttl.count())
    return refuse(Errc::not_allowed, "panel token expiry further ahead than max_ttl");
  return {};
}

void WebTokens::purge() {
  auto now = clock_();
  links_.purge(now);
  nonces_.purge(now);
}

void WebTokens::Table::insert(std::string key, Entry entry) {
  by_expiry_.emplace(entry.expiry, key);
  entries_.emplace(std::move(key), std::move(entry));
}

std::optional<WebTokens::Entry> WebTokens::Table::take(const std::string& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  Entry entry = std::move(it->second);
  entries_.erase(it);
  auto [first, last] = by_expiry_.equal_range(entry.expiry);
  for (auto i = first; i != last; ++i)
    if (i->second == key) {
      by_expiry_.erase(i);
      break;
    }
  return entry;
}

// Expired means expiry <= now, the same instant redeem starts refusing: nothing is forgotten
// while it could still be accepted.
void WebTokens::Table::purge(system_clock::time_point now) {
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now) {
    entries_.erase(by_expiry_.begin()->second);
    by_expiry_.erase(by_expiry_.begin());
  }
}

}  // namespace xcg::gateway
