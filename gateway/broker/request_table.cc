#include "gateway/broker/request_table.h"

#include <algorithm>

#include "base/text.h"

namespace xcg::gateway {
namespace {

// One overload per request that has an answer; every other message has none.
struct Refusal {
  std::string text;
  std::optional<ipc::Message> operator()(const ipc::StatusReq&) const { return ipc::StatusAns{false, text}; }
  std::optional<ipc::Message> operator()(const ipc::ActionReq&) const { return ipc::ActionAns{false, text}; }
  std::optional<ipc::Message> operator()(const ipc::SysrqReq&) const { return ipc::ActionAns{false, text}; }
  std::optional<ipc::Message> operator()(const ipc::AttachReq&) const { return ipc::AttachAns{false, text}; }
  std::optional<ipc::Message> operator()(const ipc::LogReq&) const { return ipc::LogAns{false, text}; }
  std::optional<ipc::Message> operator()(const ipc::WeblinkReq&) const {
    return ipc::WeblinkAns{false, text};
  }
  std::optional<ipc::Message> operator()(const ipc::NodeConnectReq&) const {
    return ipc::NodeConnectAns{false, text, "", ""};
  }
  // who has no failure field: the reason takes the place of the viewers.
  std::optional<ipc::Message> operator()(const ipc::WhoReq&) const { return ipc::WhoAns{{text}}; }
  template <class T>
  std::optional<ipc::Message> operator()(const T&) const {
    return std::nullopt;
  }
};

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

}  // namespace

std::optional<ipc::Message> refusal_for(const ipc::Message& request, std::string_view text) {
  return std::visit(Refusal{std::string(text)}, request);
}

bool TokenBucket::take(Clock::time_point now) {
  if (last_ != Clock::time_point{} && now > last_) {
    double seconds = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + seconds * rate_);
  }
  last_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

void RefusedOffers::add(std::string_view user, std::string_view key_type, const std::string& fingerprint) {
  if (count_++ == 0) first_user_ = printable(user, 64);
  std::string type = printable(key_type, 40);
  if (key_types_.size() < kMaxKeyTypes &&
      std::find(key_types_.begin(), key_types_.end(), type) == key_types_.end())
    key_types_.push_back(std::move(type));
  if (!fingerprint.empty() && fingerprints_.size() < kMaxFingerprints &&
      std::find(fingerprints_.begin(), fingerprints_.end(), fingerprint) == fingerprints_.end())
    fingerprints_.push_back(fingerprint);
}

std::vector<std::pair<std::string, std::string>> RefusedOffers::audit_fields() const {
  return {{"stage", "key"},
          {"offers", std::to_string(count_)},
          {"key_types", joined(key_types_)},
          {"fingerprints", joined(fingerprints_)}};
}

}  // namespace xcg::gateway
