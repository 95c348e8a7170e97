// xcg: the SSH console gateway for Xen hosting. One binary:
//   xcg serve --config FILE   run the gateway (the broker) in the foreground
//   xcg check --config FILE   validate a config
// and two internal subcommands the broker execs: `session` (one per connection) and
// `guest` (the simulated hypervisor's fake guest).
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "base/log.h"
#include "config/config.h"
#include "gateway/broker.h"
#include "gateway/session.h"
#include "xen/sim_hypervisor.h"

namespace {

constexpr const char* kUsage =
    "usage: xcg serve --config FILE [--debug]\n"
    "       xcg check --config FILE\n";

int usage_error(std::string_view why) {
  std::fprintf(stderr, "xcg: %.*s\n%s", static_cast<int>(why.size()), why.data(), kUsage);
  return 2;
}

struct Args {
  std::string config;
  bool debug = false;
  std::string session_program;  // tests only
};

// Returns an empty string on success, otherwise the problem.
std::string parse_args(int argc, char** argv, Args& args) {
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      args.config = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      args.config = std::string(a.substr(9));
    } else if (a == "--session-program" && i + 1 < argc) {
      args.session_program = argv[++i];
    } else if (a == "--debug") {
      args.debug = true;
    } else {
      return fmt::format("unexpected argument '{}'", a);
    }
  }
  return args.config.empty() ? "--config FILE is required" : "";
}

int check(const Args& args) {
  try {
    auto config = xcg::config::load_config(args.config);
    size_t keys = 0;
    for (const auto& [name, d] : config->domains) keys += d.keys.size();
    std::printf("%s: OK (%zu domains, %zu keys)\n", args.config.c_str(), config->domains.size(), keys);
    return 0;
  } catch (const xcg::config::ConfigError& e) {
    for (const auto& p : e.problems()) std::printf("%s\n", p.str().c_str());
    return 1;
  }
}

int serve(const Args& args) {
  if (args.debug) xcg::log::set_min_level(xcg::log::Level::debug);
  std::shared_ptr<const xcg::config::Config> config;
  try {
    config = xcg::config::load_config(args.config);
  } catch (const xcg::config::ConfigError& e) {
    for (const auto& p : e.problems()) std::fprintf(stderr, "%s\n", p.str().c_str());
    std::fprintf(stderr, "xcg: %s is not valid; not starting\n", args.config.c_str());
    return 1;
  }
  try {
    xcg::gateway::BrokerOptions options;
    options.session_program = args.session_program;
    xcg::gateway::Broker broker(config, options);
    return broker.run();
  } catch (const std::exception& e) {
    xcg::log::error("{}", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage_error("no command given");
  std::string_view command = argv[1];
  // _exit: everything is cleaned up already, and exit handlers (LeakSanitizer's among them in
  // test builds) would make syscalls the sandbox forbids.
  if (command == "session") ::_exit(xcg::gateway::run_session());
  if (command == "guest") return xcg::xen::run_fake_guest();
  if (command == "-h" || command == "--help" || command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  Args args;
  if (command != "serve" && command != "check") return usage_error(fmt::format("unknown command '{}'", command));
  if (auto problem = parse_args(argc, argv, args); !problem.empty()) return usage_error(problem);
  return command == "serve" ? serve(args) : check(args);
}
