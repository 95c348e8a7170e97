#include "gateway/broker/session_program.h"

#include <filesystem>
#include <system_error>

namespace xcg::gateway {
namespace {

std::string program_for(const std::string& self, const std::string& installed_xcg,
                        const std::string& installed, const char* name) {
  std::error_code ec;  // an installed xcg that does not exist is simply not this one
  if (self.empty() || std::filesystem::equivalent(self, installed_xcg, ec)) return installed;
  return (std::filesystem::path(self).parent_path() / name).string();
}

}  // namespace

std::string session_program_for(const std::string& self, const std::string& installed_xcg,
                                const std::string& installed_session) {
  return program_for(self, installed_xcg, installed_session, "xcg-session");
}

std::string web_program_for(const std::string& self, const std::string& installed_xcg,
                            const std::string& installed_web) {
  return program_for(self, installed_xcg, installed_web, "xcg-web");
}

}  // namespace xcg::gateway
