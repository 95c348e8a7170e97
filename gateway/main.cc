// xcg: the SSH console gateway for Xen hosting.
//   xcg serve --config FILE   run the gateway (the broker) in the foreground
//   xcg check --config FILE   validate a config
//   xcg keys --config FILE import FILE... | export   the key map in etcd (docs/fleet.md)
// and one internal subcommand, `guest` (the simulated hypervisor's fake guest). The broker
// execs a separate program, xcg-session (gateway/session/session_main.cc), for each connection.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "base/log.h"
#include "config/cluster_section.h"
#include "config/config.h"
#include "config/summary.h"
#include "gateway/broker/broker.h"
#include "gateway/broker/control.h"
#include "gateway/broker/host_keys.h"
#include "gateway/broker/session_program.h"
#include "gateway/broker/web_tls.h"
#include "gateway/cluster/keys_command.h"
#include "xen/sim/sim_hypervisor.h"

namespace {

constexpr const char* kUsage =
    "usage: xcg serve --config FILE [--control-socket PATH] [--no-watch] [--debug]\n"
    "       xcg check --config FILE\n"
    "       xcg hostkeys --config FILE [--host NAME]\n"
    "       xcg keys --config FILE import FILE... | export\n"
    "       xcg ctl [--socket PATH] sessions | status | cluster | kick DOMAIN|SESSION | reload | metrics\n"
    "       xcg ctl [--socket PATH] weblink DOMAIN [--readonly] [--ttl S]\n";

constexpr const char* kDefaultControlSocket = "/run/xcg/control.sock";

int usage_error(std::string_view why) {
  std::fprintf(stderr, "xcg: %.*s\n%s", static_cast<int>(why.size()), why.data(), kUsage);
  return 2;
}

struct Args {
  std::string config;
  bool debug = false;
  std::string session_program;  // tests only; default: default_session_program()
  std::string web_program;      // tests only; default: default_web_program()
  std::string control_socket = kDefaultControlSocket;
  bool watch_config = true;
  std::string host;  // hostkeys: the name customers use
};

// Returns an empty string on success, otherwise the problem.
std::string parse_args(int argc, char** argv, Args& args) {
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      args.config = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      args.config = std::string(a.substr(9));
    } else if (a == "--control-socket" && i + 1 < argc) {
      args.control_socket = argv[++i];
    } else if (a == "--host" && i + 1 < argc) {
      args.host = argv[++i];
    } else if (a == "--session-program" && i + 1 < argc) {
      args.session_program = argv[++i];
    } else if (a == "--web-program" && i + 1 < argc) {
      args.web_program = argv[++i];
    } else if (a == "--no-watch") {
      args.watch_config = false;
    } else if (a == "--debug") {
      args.debug = true;
    } else {
      return fmt::format("unexpected argument '{}'", a);
    }
  }
  return args.config.empty() ? "--config FILE is required" : "";
}

// The files `web:` names, which the config loader does not open.
bool check_web_files(const std::string& path, const xcg::config::Config& config) {
  if (!config.web) return true;
  auto problems = xcg::gateway::web_file_problems(*config.web);
  for (const auto& p : problems) fmt::print("{}: web: {}\n", path, p);
  return problems.empty();
}

// The TLS files `cluster:` names, which the config loader does not open.
bool check_cluster_files(const std::string& path, const xcg::config::Config& config) {
  if (!config.cluster) return true;
  auto problems = xcg::config::cluster_file_problems(*config.cluster);
  for (const auto& p : problems) fmt::print("{}: cluster: {}\n", path, p);
  return problems.empty();
}

int check(const Args& args) {
  try {
    auto config = xcg::config::load_config(args.config);
    if (!check_web_files(args.config, *config) || !check_cluster_files(args.config, *config)) return 1;
    fmt::print("{}: OK: {}", args.config, xcg::config::summarize(*config));
    if (config->cluster) fmt::print("{}\n", xcg::key_map_status(*config, std::chrono::seconds(3)));
    return 0;
  } catch (const xcg::config::ConfigError& e) {
    for (const auto& p : e.problems()) std::printf("%s\n", p.str().c_str());
    return 1;
  }
}

// XCG_INSTALLED_*: where meson installs both programs (meson.build).
std::string default_session_program() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return xcg::gateway::session_program_for(ec ? "" : self.string(), XCG_INSTALLED_BINARY,
                                           XCG_INSTALLED_SESSION);
}

std::string default_web_program() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return xcg::gateway::web_program_for(ec ? "" : self.string(), XCG_INSTALLED_BINARY, XCG_INSTALLED_WEB);
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
    options.session_program = args.session_program.empty() ? default_session_program() : args.session_program;
    options.web_program = args.web_program.empty() ? default_web_program() : args.web_program;
    options.control_socket = args.control_socket;
    options.watch_config = args.watch_config;
    auto parts = xcg::gateway::real_broker_parts(config, options);
    xcg::gateway::Broker broker(config, options, std::move(parts));
    return broker.run();
  } catch (const std::exception& e) {
    xcg::log::error("{}", e.what());
    return 1;
  }
}

// xcg ctl [--socket PATH] WORDS...
int ctl(int argc, char** argv) {
  std::string socket = kDefaultControlSocket;
  std::vector<std::string> words;
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--socket" && i + 1 < argc) {
      socket = argv[++i];
    } else {
      words.emplace_back(a);
    }
  }
  if (words.empty())
    return usage_error(
        "ctl: what? sessions, status, cluster, kick DOMAIN|SESSION, reload, metrics or weblink DOMAIN");
  return xcg::gateway::run_control_client(socket, words);
}

int hostkeys(const Args& args) {
  try {
    auto config = xcg::config::load_config(args.config);
    auto lines = xcg::gateway::host_key_records(*config, args.host);
    for (const auto& l : lines) std::printf("%s\n", l.c_str());
    if (config->web) {
      auto tls = xcg::gateway::load_or_make_web_tls(*config->web);
      fmt::print("# web certificate of {}: {}\n", config->web->public_url, tls.fingerprint);
    }
    return 0;
  } catch (const xcg::config::ConfigError& e) {
    for (const auto& p : e.problems()) std::fprintf(stderr, "%s\n", p.str().c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "xcg: %s\n", e.what());
    return 1;
  }
}

// The key map's commands, for a valid config with `cluster:`.
int run_keys(const std::string& path, const std::vector<std::string>& words) {
  auto config = xcg::config::load_config(path);
  if (!config->cluster) {
    std::fprintf(stderr, "xcg: %s has no cluster: section; the key map is in etcd\n", path.c_str());
    return 1;
  }
  if (words[0] == "import") return xcg::import_keys(*config->cluster, {words.begin() + 1, words.end()});
  return xcg::export_keys(*config->cluster);
}

// xcg keys --config FILE import FILE... | export
int keys(int argc, char** argv) {
  std::string path;
  std::vector<std::string> words;
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--config" && i + 1 < argc) path = argv[++i];
    else words.emplace_back(a);
  }
  if (path.empty()) return usage_error("keys: --config FILE is required");
  bool import = words.size() > 1 && words[0] == "import";
  if (!import && words != std::vector<std::string>{"export"})
    return usage_error("keys: expected import FILE... or export");
  try {
    return run_keys(path, words);
  } catch (const xcg::config::ConfigError& e) {
    for (const auto& p : e.problems()) std::fprintf(stderr, "%s\n", p.str().c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "xcg: %s\n", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage_error("no command given");
  std::string_view command = argv[1];
  if (command == "guest") return xcg::xen::run_fake_guest();
  if (command == "-h" || command == "--help" || command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (command == "ctl") return ctl(argc, argv);
  if (command == "keys") return keys(argc, argv);
  Args args;
  if (command != "serve" && command != "check" && command != "hostkeys")
    return usage_error(fmt::format("unknown command '{}'", command));
  if (auto problem = parse_args(argc, argv, args); !problem.empty()) return usage_error(problem);
  if (command == "hostkeys") return hostkeys(args);
  return command == "serve" ? serve(args) : check(args);
}
