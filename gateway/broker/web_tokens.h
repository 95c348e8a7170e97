// The tokens that open the browser console: one-time links the broker mints itself, and
// panel tokens a hosting panel mints with a shared secret (format in docs/web.md).
//
// Every refusal carries its specific reason for the broker's log, and no part of the token.
// Callers must show the client one and the same refusal, kWebTokenRefusal, whatever the
// reason: telling "used" from "forged" from "expired" would help someone guessing tokens.
#pragma once

#include <openssl/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"

namespace xcg::gateway {

inline constexpr std::string_view kWebTokenRefusal = "This link is not valid. Ask for a new one.";

enum class GrantKind { link, panel };

// What a redeemed token allows: the console of one domain, perhaps read-only.
struct Grant {
  std::string domain;
  bool readonly = true;
  GrantKind kind = GrantKind::link;
  // Who minted a link: the SSH key's blob for `weblink` from a session, "" for xcg ctl and
  // panel tokens. A reload that takes the key's rights away takes the web session's too.
  std::string issuer;
};

struct WebTokenLimits {
  // The longest a link or panel token may live; a panel expiry further ahead is refused.
  std::chrono::seconds max_ttl{600};
  // Per table (pending links; used panel nonces). A used nonce must be remembered until its
  // token expires, or the token could be replayed; when the table is full new tokens are
  // refused (fail closed) instead of forgetting one. 10,000 entries of ~150 bytes is ~1.5 MB
  // and allows ~16 redemptions a second sustained over a 600 s max_ttl.
  size_t max_remembered = 10000;
};

class WebTokens {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;
  static constexpr size_t kMinSecretBytes = 32;

  // Without a panel secret panel tokens are refused. Throws std::invalid_argument for a
  // secret shorter than kMinSecretBytes and std::runtime_error if OpenSSL has no HMAC.
  WebTokens(std::optional<std::string> panel_secret, WebTokenLimits limits, Clock clock);
  ~WebTokens();
  WebTokens(const WebTokens&) = delete;
  WebTokens& operator=(const WebTokens&) = delete;

  // A new one-time link token (43 characters, base64url of 32 random bytes) valid for `ttl`
  // (1 s .. max_ttl), handed back with `issuer` when redeemed. Only its SHA-256 digest is kept.
  Result<std::string> mint(std::string_view domain, bool readonly, std::chrono::seconds ttl,
                           std::string_view issuer = {});

  // Accepts a link or panel token once, before its expiry.
  Result<Grant> redeem(std::string_view token);

  // Forgets expired links and nonces (redeem and mint also do this first).
  void purge();

  size_t pending_links() const { return links_.size(); }
  size_t remembered_nonces() const { return nonces_.size(); }

 private:
  struct Entry {
    std::chrono::system_clock::time_point expiry;
    Grant grant;
  };
  // Entries by key, with an index by expiry so purging costs only what it removes.
  class Table {
   public:
    bool full(size_t cap) const { return entries_.size() >= cap; }
    bool contains(const std::string& key) const { return entries_.contains(key); }
    void insert(std::string key, Entry entry);
    std::optional<Entry> take(const std::string& key);
    void purge(std::chrono::system_clock::time_point now);
    size_t size() const { return entries_.size(); }

   private:
    std::map<std::string, Entry> entries_;
    std::multimap<std::chrono::system_clock::time_point, std::string> by_expiry_;
  };

  Result<Grant> redeem_link(std::string_view token);
  Result<Grant> redeem_panel(std::string_view token);
  Result<void> check_expiry(int64_t expiry) const;

  std::optional<std::string> secret_;
  struct MacFree {
    void operator()(EVP_MAC* mac) const;
  };
  std::unique_ptr<EVP_MAC, MacFree> hmac_;
  WebTokenLimits limits_;
  Clock clock_;
  Table links_;   // by SHA-256 of the token
  Table nonces_;  // by the nonce text (canonical base64url, so one text per nonce)
};

}  // namespace xcg::gateway
