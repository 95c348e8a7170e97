// The broker's side of the browser console: what xcg-web is told, its token login, and the
// one-time links that `weblink` (from an SSH session) and `xcg ctl weblink` mint.
#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "base/log.h"
#include "base/text.h"
#include "config/public_key.h"
#include "gateway/broker/broker.h"
#include "gateway/broker/front_login.h"

namespace xcg::gateway {
namespace {

constexpr size_t kMaxUserAgent = 200;
constexpr std::string_view kNotConfigured = "the browser console is not configured on this gateway";
constexpr std::string_view kThroughFront =
    "through a front, a link comes from the front: ssh DOMAIN@FRONT weblink";

std::string_view grant_kind_name(GrantKind k) { return k == GrantKind::link ? "link" : "panel"; }

bool numeric_address(const std::string& text) {
  in6_addr a{};
  return ::inet_pton(AF_INET, text.c_str(), &a) == 1 || ::inet_pton(AF_INET6, text.c_str(), &a) == 1;
}

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> words;
  for (size_t at = 0; at < text.size();) {
    size_t end = std::min(text.find(' ', at), text.size());
    if (end > at) words.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return words;
}

struct WeblinkArgs {
  std::string domain;
  bool readonly = false;
  unsigned ttl = 0;
};

constexpr std::string_view kWeblinkUsage = "usage: weblink DOMAIN [--readonly] [--ttl S]";

Result<unsigned> parse_ttl(const std::string& text) {
  unsigned ttl = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ttl);
  auto max = static_cast<unsigned>(WebTokenLimits{}.max_ttl.count());
  if (ec != std::errc() || end != text.data() + text.size() || ttl < 1 || ttl > max)
    return fail(Errc::invalid_input, fmt::format("--ttl takes 1 to {} seconds", max));
  return ttl;
}

// `xcg ctl weblink`'s words after the verb: "DOMAIN [--readonly] [--ttl S]".
Result<WeblinkArgs> parse_weblink_args(const std::string& text, unsigned default_ttl) {
  auto words = split_words(text);
  if (words.empty()) return fail(Errc::invalid_input, std::string(kWeblinkUsage));
  WeblinkArgs args{.domain = words[0], .ttl = default_ttl};
  for (size_t i = 1; i < words.size(); ++i) {
    if (words[i] == "--readonly") {
      args.readonly = true;
    } else if (words[i] == "--ttl" && i + 1 < words.size()) {
      auto ttl = parse_ttl(words[++i]);
      if (!ttl) return tl::unexpected(ttl.error());
      args.ttl = *ttl;
    } else {
      return fail(Errc::invalid_input,
                  fmt::format("unexpected '{}'; {}", printable(words[i], 40), kWeblinkUsage));
    }
  }
  return args;
}

// A refused browser console login, its reason kept for the metrics.
tl::unexpected<Error> refused_as(SessionRecord& s, LoginFailure reason, Errc code, std::string text) {
  s.refused = reason;
  return fail(code, std::move(text));
}

std::string issuer_fingerprint(const std::string& blob) {
  return blob.empty() ? "" : config::PublicKey{.blob = blob}.fingerprint();
}

// What the session is told it logged in with. On a front, the name it gives the node: the key
// that minted the link, so that the node holds the session to that key's rights, or none.
std::string web_fingerprint(const SessionRecord& s, const Grant& grant, bool front) {
  if (front) return s.fingerprint.empty() ? std::string(kBrowserFingerprint) : s.fingerprint;
  return grant.kind == GrantKind::link ? "web link" : "web panel";
}

}  // namespace

ipc::Hello Broker::web_hello(ListenerKind kind, bool trust_forwarded_for) const {
  ipc::Hello hello = hello_;
  hello.host_keys_pem.clear();  // a front's come with an accepted token (on(WebAuthorizeReq))
  if (kind == ListenerKind::web_tls && web_tls_) {
    hello.tls_chain_pem = web_tls_->chain_pem;
    hello.tls_key_pem = web_tls_->key_pem;
  }
  hello.metrics = kind == ListenerKind::metrics;
  hello.public_url = config_->web && !hello.metrics ? config_->web->public_url : "";
  hello.trust_forwarded_for = trust_forwarded_for;
  return hello;
}

void Broker::load_web_tls() {
  if (!config_->web) return;
  try {
    web_tls_ = load_or_make_web_tls(*config_->web);
  } catch (const std::exception& e) {
    if (!web_tls_) throw;  // at start-up: the broker does not start
    log::error("web TLS pair not reloaded, new connections keep the previous one: {}", e.what());
  }
}

// One attempt per connection: the page sends the token once, so a second is a guess.
void Broker::on(SessionRecord& s, const ipc::WebAuthorizeReq& req) {
  if (++s.auth_requests > 1) return cut_off(s, "a second browser console login on one connection");
  ipc::Message answer = answer_web_authorize(s, req);
  bool accepted = std::get<ipc::AuthorizeAns>(answer).ok;
  reply(s, answer);
  // A front's xcg-web logs in to the node with the front's key (docs/web.md, "Through a front").
  if (gets_front_key(s.kind == SessionKind::web, config_->is_front(), accepted))
    reply(s, ipc::FrontKey{host_keys_pem_});
}

// Every refusal is the same answer; the reason goes to the log and the audit log, the token
// nowhere.
ipc::Message Broker::answer_web_authorize(SessionRecord& s, const ipc::WebAuthorizeReq& req) {
  Result<Grant> grant = fail(Errc::not_allowed, std::string(kNotConfigured));
  if (web_tokens_ && config_->web) grant = web_tokens_->redeem(req.token);
  Result<void> admitted = grant ? web_login_refusal(s, *grant, req.forwarded_for) : Result<void>{};
  if (!grant) s.refused = LoginFailure::token;
  if (!grant || !admitted) {
    const Error& why = grant ? admitted.error() : grant.error();
    log::info("session {} ({}): browser console login refused: {}", s.pid, s.remote, why.message);
    audit_.write(AuditEvent{
        "auth_failure", s.remote, grant ? grant->domain : "", "", {{"via", "web"}, {"reason", why.message}}});
    return ipc::AuthorizeAns{};
  }
  accept_web_login(s, *grant, req);
  const config::Domain& domain = config_->domains.at(grant->domain);
  return ipc::AuthorizeAns{.ok = true,
                           .domain = domain.name,
                           .console_on_login = true,
                           .actions = grant->readonly ? std::vector<config::Action>{} : domain.actions,
                           .fingerprint = web_fingerprint(s, *grant, config_->is_front()),
                           .readonly = grant->readonly};
}

// The grant is good; may this session have it now? A trusted proxy's client address moves
// the login to that address's source network, whose cap then applies.
Result<void> Broker::web_login_refusal(SessionRecord& s, const Grant& grant,
                                       const std::string& forwarded_for) {
  auto d = config_->domains.find(grant.domain);
  if (d == config_->domains.end())
    return refused_as(s, LoginFailure::token, Errc::not_allowed, "the link's domain no longer exists");
  if (!d->second.allows(config::Action::console))
    return refused_as(s, LoginFailure::token, Errc::not_allowed,
                      fmt::format("{} no longer allows console", grant.domain));
  if (!admission_.domain_has_room(grant.domain))
    return refused_as(s, LoginFailure::domain_full, Errc::not_allowed,
                      fmt::format("{}: max_sessions_per_domain reached", grant.domain));
  if (!s.trust_forwarded_for || forwarded_for.empty()) return {};
  if (!numeric_address(forwarded_for))
    return refused_as(s, LoginFailure::forwarded_for, Errc::invalid_input,
                      "X-Forwarded-For is not an address");
  const auto& limits = config_->limits;
  std::string source = source_bucket(forwarded_for, limits.source_prefix_v4, limits.source_prefix_v6);
  if (!admission_.move_login(s.source, source))
    return refused_as(s, LoginFailure::forwarded_for, Errc::not_allowed,
                      fmt::format("max_startups_per_source reached for {}", source));
  s.source = std::move(source);
  s.remote = fmt::format("{} (via {})", forwarded_for, s.remote);
  return {};
}

void Broker::accept_web_login(SessionRecord& s, const Grant& grant, const ipc::WebAuthorizeReq& req) {
  s.key_blob = grant.issuer;
  s.fingerprint = issuer_fingerprint(grant.issuer);
  s.readonly = grant.readonly;
  const config::DomainKey* issuer =
      grant.issuer.empty() ? nullptr : config_->domains.at(grant.domain).key_for(grant.issuer);
  std::string by = issuer && !issuer->key.comment.empty() ? issuer->key.comment : s.fingerprint;
  s.key_label =
      by.empty() ? fmt::format("browser ({})", grant_kind_name(grant.kind)) : fmt::format("{} (browser)", by);
  set_authorized(s, grant.domain);
  audit(s, "auth_success",
        {{"via", "web"},
         {"token", std::string(grant_kind_name(grant.kind))},
         {"readonly", s.readonly ? "yes" : "no"},
         {"user_agent", printable(req.user_agent, kMaxUserAgent)}});
  audit(s, "session_start", {{"via", "web"}});
}

Result<std::string> Broker::mint_link(const std::string& domain, bool readonly, std::chrono::seconds ttl,
                                      const std::string& issuer) {
  if (!web_tokens_ || !config_->web) return fail(Errc::not_allowed, std::string(kNotConfigured));
  auto d = config_->domains.find(domain);
  if (d == config_->domains.end() || !d->second.allows(config::Action::console))
    return fail(Errc::not_allowed, fmt::format("console is not allowed for {}", domain));
  auto token = web_tokens_->mint(domain, readonly, ttl, issuer);
  if (!token) return tl::unexpected(token.error());
  return config_->web->public_url + "/#" + *token;
}

// A link for the session's own domain, no wider than the session: its key's read-only flag,
// and bound to that key, so that a reload that revokes the key revokes the link's session.
void Broker::on(SessionRecord& s, const ipc::WeblinkReq&) {
  if (s.kind != SessionKind::ssh) return cut_off(s, "a browser console session asked for a link");
  if (!s.front_fingerprint.empty())  // the front answers `weblink` itself; this is the menu's
    return reply(s, ipc::WeblinkAns{false, std::string(kThroughFront)});
  unsigned ttl = config_->web ? config_->web->link_ttl_s : 0;
  auto link = mint_link(s.domain, s.readonly, std::chrono::seconds(ttl), s.key_blob);
  if (!link) {
    if (link.error().code != Errc::not_allowed)
      log::warn("weblink for {}: {}", s.domain, link.error().message);
    return reply(s, ipc::WeblinkAns{false, link.error().message});
  }
  audit(s, "weblink", {{"ttl", std::to_string(ttl)}, {"readonly", s.readonly ? "yes" : "no"}});
  reply(s, ipc::WeblinkAns{true, *link + fmt::format("\nvalid once, for {} s", ttl)});
}

std::string Broker::control_weblink(const std::string& args) {
  unsigned default_ttl = config_->web ? config_->web->link_ttl_s : 60;
  auto request = parse_weblink_args(args, default_ttl);
  if (!request) return "error: " + request.error().message;
  if (!config_->domains.contains(request->domain))
    return fmt::format("error: no domain '{}'", printable(request->domain, 64));
  auto link = mint_link(request->domain, request->readonly, std::chrono::seconds(request->ttl), "");
  if (!link) return "error: " + link.error().message;
  audit_.write(
      AuditEvent{"weblink",
                 "control socket",
                 request->domain,
                 "",
                 {{"ttl", std::to_string(request->ttl)}, {"readonly", request->readonly ? "yes" : "no"}}});
  return *link + fmt::format("\nvalid once, for {} s", request->ttl);
}

}  // namespace xcg::gateway
