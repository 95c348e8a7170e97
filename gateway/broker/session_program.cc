#include "gateway/broker/session_program.h"

#include <filesystem>
#include <system_error>

namespace xcg::gateway {

std::string session_program_for(const std::string& self, const std::string& installed_xcg,
                                const std::string& installed_session) {
  std::error_code ec;  // an installed xcg that does not exist is simply not this one
  if (self.empty() || std::filesystem::equivalent(self, installed_xcg, ec)) return installed_session;
  return (std::filesystem::path(self).parent_path() / "xcg-session").string();
}

}  // namespace xcg::gateway
