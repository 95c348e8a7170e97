// xcg_badinput: hostile SSH clients against a live gateway, one case per run.
//
//   xcg_badinput --list
//   xcg_badinput --port N --user DOMAIN --key ED25519_KEY_FILE [--max-auth-tries N] [--max-key-offers N]
//                [--login-grace SECONDS] CASE...
//
// Prints "CASE: ok: what happened" or "CASE: FAILED: why" per case; exits 0 if every case
// went as the gateway's specification says, 1 if not, 2 on a usage error.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "tests/badinput/cases.h"

namespace {

using namespace xcg::badinput;

std::vector<Case> all_cases() {
  std::vector<Case> all;
  for (auto part : {stream_cases, auth_cases, channel_cases, disconnect_cases}) {
    auto more = part();
    all.insert(all.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  return all;
}

int usage(std::string_view why) {
  fmt::print(stderr,
             "xcg_badinput: {}\nusage: xcg_badinput --list | --port N --user DOMAIN --key FILE "
             "[--max-auth-tries N] [--max-key-offers N] [--login-grace SECONDS] CASE...\n",
             why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  auto cases = all_cases();
  std::vector<std::string> wanted;
  std::string key_path;
  Env env;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--list") {
      for (const auto& c : cases) fmt::print("{}\t{}\n", c.name, c.what);
      return 0;
    }
    if (a == "--port" && has_value) {
      env.port = static_cast<uint16_t>(std::atoi(argv[++i]));
    } else if (a == "--user" && has_value) {
      env.user = argv[++i];
    } else if (a == "--key" && has_value) {
      key_path = argv[++i];
    } else if (a == "--max-auth-tries" && has_value) {
      env.max_auth_tries = static_cast<unsigned>(std::atoi(argv[++i]));
    } else if (a == "--max-key-offers" && has_value) {
      env.max_key_offers = static_cast<unsigned>(std::atoi(argv[++i]));
    } else if (a == "--login-grace" && has_value) {
      env.login_grace_s = std::atof(argv[++i]);
    } else if (a.starts_with("--")) {
      return usage(fmt::format("unknown option {}", a));
    } else {
      wanted.emplace_back(a);
    }
  }
  if (env.port == 0 || env.user.empty() || key_path.empty() || wanted.empty())
    return usage("--port, --user, --key and a case are required");
  auto key = Ed25519Key::load(key_path);
  if (!key) return usage(key.error().message);
  env.key = std::move(*key);

  int failed = 0;
  for (const auto& name : wanted) {
    auto it = std::find_if(cases.begin(), cases.end(), [&](const Case& c) { return c.name == name; });
    if (it == cases.end()) return usage(fmt::format("no case named {}", name));
    Outcome outcome = xcg::fail(xcg::Errc::system, "no outcome");
    try {
      outcome = it->run(env);
    } catch (const std::exception& e) {  // the test program's own failure, not the gateway's
      outcome = xcg::fail(xcg::Errc::system, std::string("xcg_badinput: ") + e.what());
    }
    if (outcome) {
      fmt::print("{}: ok: {}\n", name, *outcome);
    } else {
      fmt::print("{}: FAILED: {}\n", name, outcome.error().message);
      ++failed;
    }
    std::fflush(stdout);
  }
  return failed == 0 ? 0 : 1;
}
