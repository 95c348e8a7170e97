// xcg-loadgen: the benchmark's SSH client, used identically against xcg and the OpenSSH
// baseline. See docs/performance.md.
//
//   xcg-loadgen keygen --keys DIR --prefix vm --first 1 --count N
//   xcg-loadgen MODE --port P --keys DIR [--user NAME] [--prefix vm] --first I --count N [...]
//     latency    --logins K             sequential logins, each until the console answers
//     rate       --duration S --concurrency C [--threads T]   closed-loop logins
//     echo       --keystrokes K         keystroke round trips on one attached session
//     throughput --seq N                guest → client bytes of `seq N`
//     hold       [--concurrency C]      keeps sessions open; commands on stdin (see hold.cc)
//     webecho, webhold                  the same over xcg-web's WebSocket, links on stdin (web.cc)
// Every mode prints one JSON object per line on stdout.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "bench/loadgen/options.h"
#include "tests/load/ssh_client/handles.h"

namespace xcg::bench {
namespace {

int keygen(const Options& o) {
  for (unsigned i = o.first; i < o.first + o.count; ++i) {
    std::string path = fmt::format("{}/{}{:04}", o.keys_dir, o.prefix, i);
    ssh_client::Key key = ssh_client::generate_ed25519_key();
    if (!key) {
      std::fprintf(stderr, "xcg-loadgen: cannot generate a key\n");
      return 1;
    }
    int rc = ssh_pki_export_privkey_file(key.get(), nullptr, nullptr, nullptr, path.c_str());
    if (rc == SSH_OK && ::chmod(path.c_str(), 0600) != 0) rc = SSH_ERROR;  // libssh follows the umask
    if (rc == SSH_OK) rc = ssh_pki_export_pubkey_file(key.get(), (path + ".pub").c_str());
    if (rc != SSH_OK) {
      std::fprintf(stderr, "xcg-loadgen: cannot write %s\n", path.c_str());
      return 1;
    }
  }
  return 0;
}

bool parse(int argc, char** argv, Options& o) {
  if (argc < 2) return false;
  o.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string_view a = argv[i];
    const char* v = argv[i + 1];
    auto u = [&] { return static_cast<unsigned>(std::strtoul(v, nullptr, 10)); };
    if (a == "--host") o.host = v;
    else if (a == "--port") o.port = static_cast<int>(u());
    else if (a == "--keys") o.keys_dir = v;
    else if (a == "--user") o.user = v;
    else if (a == "--prefix") o.prefix = v;
    else if (a == "--first") o.first = u();
    else if (a == "--count") o.count = u();
    else if (a == "--logins") o.logins = u();
    else if (a == "--duration") o.duration_s = std::strtod(v, nullptr);
    else if (a == "--concurrency") o.concurrency = u();
    else if (a == "--threads") o.threads = u();
    else if (a == "--keystrokes") o.keystrokes = u();
    else if (a == "--seq") o.seq = std::strtoull(v, nullptr, 10);
    else if (a == "--timeout") o.timeout_s = u();
    else return false;
  }
  return argc % 2 == 0 && !o.keys_dir.empty() && o.count > 0 && o.concurrency > 0 && o.threads > 0 &&
         o.timeout_s > 0 && (o.mode == "keygen" || o.port > 0);
}

}  // namespace
}  // namespace xcg::bench

int main(int argc, char** argv) {
  using namespace xcg::bench;
  Options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr,
                 "usage: xcg-loadgen keygen|latency|rate|echo|throughput|hold|webecho|webhold --keys DIR "
                 "[--port P] [--user U] [--prefix vm] [--first I] [--count N] ... "
                 "(see bench/loadgen/main.cc)\n");
    return 2;
  }
  xcg::ssh_client::Libssh libssh;
  if (!libssh.ok()) {
    std::fprintf(stderr, "xcg-loadgen: ssh_init failed\n");
    return 1;
  }
  int rc = 2;
  try {
    if (o.mode == "keygen") rc = keygen(o);
    else if (o.mode == "latency") rc = run_latency(o);
    else if (o.mode == "rate") rc = run_rate(o);
    else if (o.mode == "echo") rc = run_echo(o);
    else if (o.mode == "throughput") rc = run_throughput(o);
    else if (o.mode == "hold") rc = run_hold(o);
    else if (o.mode == "webecho") rc = run_web_echo(o);
    else if (o.mode == "webhold") rc = run_web_hold(o);
    else std::fprintf(stderr, "xcg-loadgen: unknown mode '%s'\n", o.mode.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "xcg-loadgen: %s\n", e.what());
    rc = 1;
  }
  std::fflush(stdout);
  return rc;
}
