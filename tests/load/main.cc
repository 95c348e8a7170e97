// xcg_load: the load and no-loss test of the console path, and the count guest it
// needs on the simulated hypervisor.
//
//   xcg_load guest [--rate LINES_PER_SECOND] [--halt-burst LINES]
//       The count guest (count_guest.h); for `sim: guest_command`.
//   xcg_load check --domain DOMAIN FILE
//       Checks a viewer's captured console stream (e.g. an OpenSSH client's output) as the load
//       run checks its own viewers; prints "ok first=F last=L numbers=N reboots=R" and exits 0,
//       or prints the error and exits 1.
//   xcg_load run --port N --keys DIR --domains A,B,... [--viewers 200] [--churn 20]
//                [--duration 60] [--ramp 10] [--reboot DOMAIN] [--reboot-at SECONDS]
//                [--threads 2] [--login-timeout 30] [--drain-timeout 30] [--max-logging-in 40]
//       Against a gateway whose domains all run the count guest: attaches the viewers (libssh
//       clients, many per thread) at evenly spread moments during the ramp, spread over the
//       domains; meanwhile starts `churn` logins a second (exec status, and console attaches
//       that read a few lines and detach with Ctrl-]), at most --max-logging-in of all of
//       them in their handshake at once; reboots one domain half-way (or at
//       --reboot-at); at the end waits until every viewer has reached its domain's live head.
//       Every viewer's stream is checked line by line (console_check.h). Prints progress and
//       each failure; exits 0 if nothing failed, 1 if something did, 2 on a usage error.
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include "tests/load/console_check.h"
#include "tests/load/count_guest.h"
#include "tests/load/load_run.h"
#include "tests/load/ssh_client/handles.h"

namespace {

int usage(std::string_view why) {
  fmt::print(stderr,
             "xcg_load: {}\nusage: xcg_load guest [--rate N] [--halt-burst N]\n"
             "       xcg_load check --domain DOMAIN FILE\n"
             "       xcg_load run --port N --keys DIR --domains A,B,... [--viewers N] [--churn N] "
             "[--duration S] [--ramp S] [--reboot DOMAIN] [--reboot-at S] [--threads N] "
             "[--login-timeout S] [--drain-timeout S] [--max-logging-in N]\n",
             why);
  return 2;
}

std::vector<std::string> split_commas(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    size_t comma = s.find(',');
    if (comma != 0) out.emplace_back(s.substr(0, comma));
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

// Numbers from the command line: the whole argument, positive.
bool parse_positive(const char* arg, double& out) {
  char* end = nullptr;
  double v = std::strtod(arg, &end);
  if (end == arg || *end != '\0' || !(v > 0)) return false;
  out = v;
  return true;
}

// Hundreds of sessions need more descriptors than the usual soft limit.
void raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  lim.rlim_cur = lim.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) std::perror("xcg_load: setrlimit RLIMIT_NOFILE");
}

int guest(int argc, char** argv) {
  double rate = 100;
  double halt_burst = 0;
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    bool known = (a == "--rate" && i + 1 < argc && parse_positive(argv[i + 1], rate)) ||
                 (a == "--halt-burst" && i + 1 < argc && parse_positive(argv[i + 1], halt_burst));
    if (!known) return usage(fmt::format("bad guest argument {}", a));
    ++i;  // the value
  }
  return xcg::load::run_count_guest(rate, static_cast<uint64_t>(halt_burst));
}

int check(int argc, char** argv) {
  if (argc != 5 || std::string_view(argv[2]) != "--domain") return usage("check needs --domain DOMAIN FILE");
  std::FILE* f = std::fopen(argv[4], "rb");
  if (!f) {
    std::perror(argv[4]);
    return 2;
  }
  xcg::load::ConsoleCheck c(argv[3]);
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) c.feed(std::string_view(buf, n));
  bool read_error = std::ferror(f);
  std::fclose(f);
  if (read_error) {
    fmt::print(stderr, "xcg_load: reading {} failed\n", argv[4]);
    return 2;
  }
  if (!c.ok()) {
    fmt::print("error: {}\n", c.error());
    return 1;
  }
  fmt::print("ok first={} last={} numbers={} reboots={}\n", c.first_number().value_or(0), c.last_number(),
             c.numbers_seen(), c.reboots());
  return 0;
}

int run(int argc, char** argv) {
  xcg::load::LoadSettings s;
  bool reboot_at_given = false;
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if (i + 1 >= argc) return usage(fmt::format("{} needs a value", a));
    const char* v = argv[++i];
    double n = 0;
    bool number = parse_positive(v, n);
    if (a == "--keys") {
      s.key_dir = v;
    } else if (a == "--domains") {
      s.domains = split_commas(v);
    } else if (a == "--reboot") {
      s.reboot_domain = v;
    } else if (!number) {
      return usage(fmt::format("{}: expected a positive number, got '{}'", a, v));
    } else if (a == "--port") {
      s.port = static_cast<int>(n);
    } else if (a == "--viewers") {
      s.viewers = static_cast<unsigned>(n);
    } else if (a == "--churn") {
      s.churn_per_second = n;
    } else if (a == "--duration") {
      s.duration_s = n;
    } else if (a == "--ramp") {
      s.ramp_s = n;
    } else if (a == "--reboot-at") {
      s.reboot_at_s = n;
      reboot_at_given = true;
    } else if (a == "--threads") {
      s.threads = static_cast<unsigned>(n);
    } else if (a == "--login-timeout") {
      s.login_timeout_s = n;
    } else if (a == "--drain-timeout") {
      s.drain_timeout_s = n;
    } else if (a == "--max-logging-in") {
      s.max_logging_in = static_cast<unsigned>(n);
    } else {
      return usage(fmt::format("unknown option {}", a));
    }
  }
  if (s.port <= 0 || s.port > 65535 || s.key_dir.empty() || s.domains.empty())
    return usage("--port, --keys and --domains are required");
  if (s.threads == 0 || s.viewers == 0) return usage("--threads and --viewers must be at least 1");
  if (!reboot_at_given) s.reboot_at_s = s.duration_s / 2;
  if (s.ramp_s >= s.duration_s || (!s.reboot_domain.empty() && s.reboot_at_s >= s.duration_s))
    return usage("the ramp and the reboot must fall within the duration");
  raise_fd_limit();
  xcg::ssh_client::Libssh libssh;
  if (!libssh.ok()) {
    fmt::print(stderr, "xcg_load: ssh_init failed\n");
    return 1;
  }
  return xcg::load::run_load(s);
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode == "guest") return guest(argc, argv);
  if (mode == "run") return run(argc, argv);
  if (mode == "check") return check(argc, argv);
  return usage("expected 'guest', 'check' or 'run'");
}
