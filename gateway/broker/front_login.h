// A front's login at a node (docs/fleet.md, "Front to node"): the user name
// "xcg-front:<domain>:<customer fingerprint>:<ro|rw>" with a key listed in `fronts:`.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace xcg::gateway {

inline constexpr std::string_view kFrontUserPrefix = "xcg-front:";
// The fingerprint a front names for a browser whose link no key minted (`xcg ctl weblink`, a
// panel's token): the front vouches for it, as it does for a key's login, and the node grants
// the console of a domain that allows it, with no key to revoke.
inline constexpr std::string_view kBrowserFingerprint = "browser";

struct FrontUser {
  std::string domain;
  std::string fingerprint;  // the customer's key's
  bool readonly = false;
};

// The parts of a front's user name, or nullopt if it is not one.
std::optional<FrontUser> parse_front_user(std::string_view user);

struct FrontGrant {
  const config::Domain* domain = nullptr;
  const config::DomainKey* key = nullptr;  // the customer's, in the domain's key map; none for a browser
  bool readonly = false;                   // the narrower of the front's word and the key's
};

// Whether `front_key` (the key the login is signed with) may log in as `user`: the key is in
// `fronts:`, the domain is this node's, and the fingerprint one of its keys (or
// kBrowserFingerprint, for a domain that allows the console).
std::optional<FrontGrant> front_grant(const config::Config& c, const config::PublicKey& front_key,
                                      std::string_view user);

}  // namespace xcg::gateway
