#include "gateway/broker/front_login.h"

namespace xcg::gateway {

// The fingerprint holds a ':' ("SHA256:..."): the domain ends at the first one after the
// prefix, the mode starts after the last one.
std::optional<FrontUser> parse_front_user(std::string_view user) {
  if (!user.starts_with(kFrontUserPrefix)) return std::nullopt;
  auto rest = user.substr(kFrontUserPrefix.size());
  auto first = rest.find(':');
  auto last = rest.rfind(':');
  if (first == std::string_view::npos || last <= first + 1) return std::nullopt;
  auto mode = rest.substr(last + 1);
  if (mode != "ro" && mode != "rw") return std::nullopt;
  FrontUser out{std::string(rest.substr(0, first)), std::string(rest.substr(first + 1, last - first - 1)),
                mode == "ro"};
  if (!config::valid_domain_name(out.domain)) return std::nullopt;
  return out;
}

std::optional<FrontGrant> front_grant(const config::Config& c, const config::PublicKey& front_key,
                                      std::string_view user) {
  auto front = c.front_for_key(front_key.blob);
  auto parsed = parse_front_user(user);
  if (front == nullptr || !parsed) return std::nullopt;
  auto domain = c.domains.find(parsed->domain);
  if (domain == c.domains.end()) return std::nullopt;
  if (parsed->fingerprint == kBrowserFingerprint) {
    if (!domain->second.allows(config::Action::console)) return std::nullopt;
    return FrontGrant{&domain->second, nullptr, parsed->readonly};
  }
  for (const auto& k : domain->second.keys)
    if (k.key.fingerprint() == parsed->fingerprint)
      return FrontGrant{&domain->second, &k, parsed->readonly || k.readonly};
  return std::nullopt;
}

}  // namespace xcg::gateway
