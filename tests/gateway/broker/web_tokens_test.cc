// Web console tokens: one-time links and panel tokens, each accepted once and only as issued,
// with bounded memory. The clock is a variable the tests move.
#include <openssl/evp.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>

#include "gateway/broker/web_tokens.h"

using namespace xcg;
using namespace xcg::gateway;
using namespace std::chrono_literals;
using std::chrono::system_clock;

namespace {

constexpr int64_t kStart = 1'800'000'000;
const std::string kSecret(32, 's');

system_clock::time_point at(int64_t unix_seconds) {
  return system_clock::time_point(std::chrono::seconds(unix_seconds));
}

struct Fixture {
  system_clock::time_point now = at(kStart);
  WebTokens tokens;
  explicit Fixture(WebTokenLimits limits = {}, std::optional<std::string> secret = kSecret)
      : tokens(std::move(secret), limits, [this] { return now; }) {}
};

std::string b64url(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  out.erase(std::remove(out.begin(), out.end(), '='), out.end());
  std::replace(out.begin(), out.end(), '+', '-');
  std::replace(out.begin(), out.end(), '/', '_');
  return out;
}

std::string hmac(std::string_view key, std::string_view message) {
  std::array<unsigned char, 32> mac{};
  size_t len = 0;
  REQUIRE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                    reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac.data(),
                    mac.size(), &len) != nullptr);
  return std::string(reinterpret_cast<const char*>(mac.data()), len);
}

// A panel token as docs/web.md tells a panel to make one.
std::string panel_token(std::string_view domain, std::string_view mode, int64_t expiry,
                        std::string_view nonce = "nonce-0123456789", std::string_view key = kSecret) {
  std::string fields[] = {std::string(domain), std::string(mode), std::to_string(expiry), b64url(nonce)};
  std::string message = "xcg-weblink-v1\n";
  for (auto& f : fields) message += f + "\n";
  return "v1~" + fields[0] + "~" + fields[1] + "~" + fields[2] + "~" + fields[3] + "~" +
         b64url(hmac(key, message));
}

// The fields of a panel token, and one put back together.
std::vector<std::string> fields(const std::string& token) {
  std::vector<std::string> out{""};
  for (char c : token) {
    if (c == '~') out.emplace_back();
    else out.back().push_back(c);
  }
  return out;
}

std::string joined(const std::vector<std::string>& f) {
  std::string out = f[0];
  for (size_t i = 1; i < f.size(); ++i) out += "~" + f[i];
  return out;
}

// Refused, with a reason that does not quote the token.
std::string refusal(WebTokens& tokens, const std::string& token) {
  auto r = tokens.redeem(token);
  REQUIRE_FALSE(r);
  if (token.size() >= 8) CHECK(r.error().message.find(token) == std::string::npos);
  return r.error().message;
}

}  // namespace

TEST_CASE("a minted link is redeemed once for its domain and mode", "[web_tokens]") {
  Fixture f;
  auto token = f.tokens.mint("web1", true, 60s);
  REQUIRE(token);
  CHECK(token->size() == 43);
  auto grant = f.tokens.redeem(*token);
  REQUIRE(grant);
  CHECK(grant->domain == "web1");
  CHECK(grant->readonly);
  CHECK(grant->kind == GrantKind::link);
  CHECK(refusal(f.tokens, *token) == "unknown, used or expired link");
}

TEST_CASE("a read-write link grants read-write", "[web_tokens]") {
  Fixture f;
  auto grant = f.tokens.redeem(f.tokens.mint("db-2", false, 60s).value());
  REQUIRE(grant);
  CHECK_FALSE(grant->readonly);
}

TEST_CASE("a link names the key that minted it; links from elsewhere name none", "[web_tokens]") {
  Fixture f;
  auto by_key = f.tokens.redeem(f.tokens.mint("web1", false, 60s, "key-blob-1").value());
  REQUIRE(by_key);
  CHECK(by_key->issuer == "key-blob-1");
  auto by_operator = f.tokens.redeem(f.tokens.mint("web1", false, 60s).value());
  REQUIRE(by_operator);
  CHECK(by_operator->issuer.empty());
}

TEST_CASE("two links are different and each opens its own domain", "[web_tokens]") {
  Fixture f;
  auto a = f.tokens.mint("a", true, 60s).value();
  auto b = f.tokens.mint("b", true, 60s).value();
  CHECK(a != b);
  CHECK(f.tokens.redeem(b).value().domain == "b");
  CHECK(f.tokens.redeem(a).value().domain == "a");
}

TEST_CASE("a link works until its ttl and not at it", "[web_tokens]") {
  Fixture f;
  auto early = f.tokens.mint("web1", true, 60s).value();
  auto late = f.tokens.mint("web1", true, 60s).value();
  f.now += 59s;
  CHECK(f.tokens.redeem(early));
  f.now += 1s;
  CHECK(refusal(f.tokens, late) == "unknown, used or expired link");
}

TEST_CASE("mint refuses a bad domain or lifetime", "[web_tokens]") {
  Fixture f({.max_ttl = 600s});
  CHECK_FALSE(f.tokens.mint("", true, 60s));
  CHECK_FALSE(f.tokens.mint("a~b", true, 60s));
  CHECK_FALSE(f.tokens.mint(std::string(65, 'a'), true, 60s));
  CHECK_FALSE(f.tokens.mint("web1", true, 0s));
  CHECK_FALSE(f.tokens.mint("web1", true, 601s));
  CHECK(f.tokens.mint("web1", true, 600s));
  CHECK(f.tokens.pending_links() == 1);
}

TEST_CASE("a panel token is accepted once", "[web_tokens]") {
  Fixture f;
  auto token = panel_token("web1.example", "w", kStart + 60);
  auto grant = f.tokens.redeem(token);
  REQUIRE(grant);
  CHECK(grant->domain == "web1.example");
  CHECK_FALSE(grant->readonly);
  CHECK(grant->kind == GrantKind::panel);
  CHECK(refusal(f.tokens, token) == "panel nonce already used");
}

TEST_CASE("panel tokens made by the Python example in docs/web.md are accepted", "[web_tokens]") {
  // Printed by that example with secret bytes 0..31, now 1800000000, ttl 60 and fixed nonces.
  std::string secret;
  for (int i = 0; i < 32; ++i) secret += static_cast<char>(i);
  Fixture f({}, secret);
  auto r = f.tokens.redeem(
      "v1~web1.example~r~1800000060~ZGVmZ2hpamtsbW5vcHFycw~"
      "fKLuPxBas4HLw6ALyzFUCSyD5eNUJkaQlzmerYkokWs");
  REQUIRE(r);
  CHECK(r->domain == "web1.example");
  CHECK(r->readonly);
  auto w = f.tokens.redeem(
      "v1~db-2~w~1800000060~yMnKy8zNzs_Q0dLT1NXW1w~czFBRToT-pAej54l8HdFqj4G51-glAoCfFjPV7VQ1No");
  REQUIRE(w);
  CHECK(w->domain == "db-2");
  CHECK_FALSE(w->readonly);
}

TEST_CASE("a panel token with a changed MAC is refused", "[web_tokens]") {
  Fixture f;
  auto token = panel_token("web1", "r", kStart + 60);
  auto forged = token;
  forged[forged.size() - 10] = forged[forged.size() - 10] == 'A' ? 'B' : 'A';
  CHECK(refusal(f.tokens, forged) == "panel token MAC mismatch");
  CHECK(f.tokens.redeem(token));  // the forgery did not use up the nonce
}

TEST_CASE("a panel token made with another secret is refused", "[web_tokens]") {
  Fixture f;
  auto token = panel_token("web1", "r", kStart + 60, "nonce-0123456789", std::string(32, 't'));
  CHECK(refusal(f.tokens, token) == "panel token MAC mismatch");
}

TEST_CASE("no field of a panel token can be changed", "[web_tokens]") {
  Fixture f;
  auto token = panel_token("web1", "r", kStart + 60);
  auto changed = [&](size_t field, std::string value) {
    auto parts = fields(token);
    parts[field] = std::move(value);
    return refusal(f.tokens, joined(parts));
  };
  CHECK(changed(1, "web2") == "panel token MAC mismatch");                       // another domain
  CHECK(changed(1, "web1.x") == "panel token MAC mismatch");                     // a longer domain
  CHECK(changed(2, "w") == "panel token MAC mismatch");                          // read-only flipped
  CHECK(changed(3, std::to_string(kStart + 61)) == "panel token MAC mismatch");  // expiry
  CHECK(changed(4, b64url("nonce-0123456780")) == "panel token MAC mismatch");   // nonce
  CHECK(f.tokens.redeem(token));
}

TEST_CASE("another domain's panel token opens that domain only", "[web_tokens]") {
  Fixture f;
  auto mine = panel_token("web1", "w", kStart + 60, "nonce-mine-01234");
  auto theirs = panel_token("web2", "w", kStart + 60, "nonce-theirs-012");
  CHECK(f.tokens.redeem(theirs).value().domain == "web2");
  CHECK(f.tokens.redeem(mine).value().domain == "web1");
}

TEST_CASE("every truncation of a token is refused and uses nothing up", "[web_tokens]") {
  Fixture f;
  auto panel = panel_token("web1", "r", kStart + 60);
  auto link = f.tokens.mint("web1", true, 60s).value();
  for (auto* token : {&panel, &link})
    for (size_t n = 0; n < token->size(); ++n) {
      INFO(n);
      CHECK_FALSE(f.tokens.redeem(token->substr(0, n)));
    }
  CHECK(f.tokens.redeem(panel));
  CHECK(f.tokens.redeem(link));
}

TEST_CASE("malformed panel tokens are refused before the MAC", "[web_tokens]") {
  Fixture f;
  auto token = panel_token("web1", "r", kStart + 60);
  auto parts = fields(token);
  auto malformed = [&](const std::vector<std::string>& p) { return refusal(f.tokens, joined(p)); };
  auto with = [&](size_t i, std::string v) {
    auto p = parts;
    p[i] = std::move(v);
    return p;
  };
  CHECK(malformed(with(0, "v2")) == "malformed token");
  CHECK(malformed(with(1, "")) == "malformed panel token");
  CHECK(malformed(with(1, "-web1")) == "malformed panel token");
  CHECK(malformed(with(2, "R")) == "malformed panel token");
  CHECK(malformed(with(3, "0" + parts[3])) == "malformed panel token");
  CHECK(malformed(with(3, "+" + parts[3])) == "malformed panel token");
  CHECK(malformed(with(4, b64url("short"))) == "malformed panel token");
  CHECK(malformed(with(4, parts[4] + "=")) == "malformed panel token");
  auto extra = parts;
  extra.push_back("x");
  CHECK(malformed(extra) == "malformed panel token");
}

TEST_CASE("a base64url field with stray low bits is refused", "[web_tokens]") {
  // 16 bytes leave 4 unused bits in the last character; setting the lowest spells the same
  // nonce another way.
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  Fixture f;
  auto parts = fields(panel_token("web1", "r", kStart + 60));
  REQUIRE(parts[4].size() == 22);
  parts[4].back() = alphabet[alphabet.find(parts[4].back()) | 1];
  CHECK(refusal(f.tokens, joined(parts)) == "malformed panel token");
}

TEST_CASE("garbage and very long input are refused cheaply", "[web_tokens]") {
  Fixture f;
  CHECK(refusal(f.tokens, std::string(1 << 20, 'A')) == "token too long");
  CHECK(refusal(f.tokens, "v1~" + std::string(1 << 20, '~')) == "token too long");
  CHECK(refusal(f.tokens, std::string(43, '\0')) == "malformed token");
  CHECK(refusal(f.tokens, std::string(43, 'A')) == "unknown, used or expired link");
  for (int c = 0; c < 256; ++c) CHECK_FALSE(f.tokens.redeem(std::string(1, static_cast<char>(c))));
  CHECK(refusal(f.tokens, "v1~\n~r~1~AAAAAAAAAAAAAAAAAAAAAA~AA") == "malformed panel token");
}

TEST_CASE("a panel expiry at or before now is refused", "[web_tokens]") {
  Fixture f;
  f.now += 500ms;
  CHECK(refusal(f.tokens, panel_token("web1", "r", kStart)) == "panel token expired");
  CHECK(refusal(f.tokens, panel_token("web1", "r", kStart - 3600)) == "panel token expired");
  CHECK(f.tokens.redeem(panel_token("web1", "r", kStart + 1)));
}

TEST_CASE("a panel expiry further ahead than max_ttl is refused", "[web_tokens]") {
  Fixture f({.max_ttl = 600s});
  CHECK(refusal(f.tokens, panel_token("web1", "r", kStart + 601, "nonce-0123456780")) ==
        "panel token expiry further ahead than max_ttl");
  CHECK(refusal(f.tokens, panel_token("web1", "r", 999'999'999'999)) ==
        "panel token expiry further ahead than max_ttl");
  CHECK(f.tokens.redeem(panel_token("web1", "r", kStart + 600)));
}

TEST_CASE("used nonces are forgotten at their expiry, not before", "[web_tokens]") {
  Fixture f;
  auto token = panel_token("web1", "r", kStart + 60);
  REQUIRE(f.tokens.redeem(token));
  REQUIRE(f.tokens.redeem(panel_token("web1", "r", kStart + 120, "nonce-other-0123")));
  f.now = at(kStart + 59);
  f.tokens.purge();
  CHECK(f.tokens.remembered_nonces() == 2);
  CHECK(refusal(f.tokens, token) == "panel nonce already used");
  f.now = at(kStart + 60);
  f.tokens.purge();
  CHECK(f.tokens.remembered_nonces() == 1);
  CHECK(refusal(f.tokens, token) == "panel token expired");
  f.now = at(kStart + 120);
  f.tokens.purge();
  CHECK(f.tokens.remembered_nonces() == 0);
}

TEST_CASE("pending links are forgotten at their expiry, and redeemed ones at once", "[web_tokens]") {
  Fixture f;
  auto used = f.tokens.mint("web1", true, 30s).value();
  REQUIRE(f.tokens.mint("web1", true, 60s));
  CHECK(f.tokens.pending_links() == 2);
  REQUIRE(f.tokens.redeem(used));
  CHECK(f.tokens.pending_links() == 1);
  f.now += 60s;
  f.tokens.purge();
  CHECK(f.tokens.pending_links() == 0);
}

TEST_CASE("a full nonce table refuses new panel tokens until one expires", "[web_tokens]") {
  Fixture f({.max_ttl = 600s, .max_remembered = 2});
  REQUIRE(f.tokens.redeem(panel_token("web1", "r", kStart + 60, "nonce-a-01234567")));
  REQUIRE(f.tokens.redeem(panel_token("web1", "r", kStart + 90, "nonce-b-01234567")));
  auto third = panel_token("web1", "r", kStart + 90, "nonce-c-01234567");
  CHECK(refusal(f.tokens, third) == "panel nonce store full (max_remembered)");
  f.now = at(kStart + 60);
  CHECK(f.tokens.redeem(third));
  CHECK(f.tokens.remembered_nonces() == 2);
}

TEST_CASE("a full link table refuses to mint until a link is used", "[web_tokens]") {
  Fixture f({.max_ttl = 600s, .max_remembered = 2});
  auto first = f.tokens.mint("web1", true, 60s).value();
  REQUIRE(f.tokens.mint("web1", true, 60s));
  auto third = f.tokens.mint("web1", true, 60s);
  REQUIRE_FALSE(third);
  CHECK(third.error().message == "too many pending links (max_remembered)");
  REQUIRE(f.tokens.redeem(first));
  CHECK(f.tokens.mint("web1", true, 60s));
}

TEST_CASE("panel secrets are at least 32 bytes; without one panel tokens are refused", "[web_tokens]") {
  auto clock = [] { return at(kStart); };
  CHECK_THROWS_AS(WebTokens(std::string(31, 's'), {}, clock), std::invalid_argument);
  WebTokens no_panel(std::nullopt, {}, clock);
  CHECK(refusal(no_panel, panel_token("web1", "r", kStart + 60)) == "panel tokens are not configured");
  CHECK(no_panel.redeem(no_panel.mint("web1", true, 60s).value()));
}
