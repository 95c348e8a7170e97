#include "tests/gateway/cluster/etcd_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "base/child.h"
#include "base/unique_fd.h"
#include "gateway/cluster/curl_handles.h"

namespace xcg::testing {
namespace {

// A port nobody listens on now (the kernel's pick for port 0). Another process could take it
// before etcd binds it; on a test machine that is rare enough.
int free_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw std::runtime_error("no free port");
  return ntohs(addr.sin_port);
}

std::string url(const char* scheme, int port) {
  return std::string(scheme) + "://127.0.0.1:" + std::to_string(port);
}

// Starts `args` (argv[0] a full path), its output to `log`.
Child spawn(std::vector<std::string> args, int log) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull) throw std::runtime_error("cannot open /dev/null");
  int fds[] = {devnull.get(), log, log};
  ExecSpec spec{argv[0], argv.data(), envp, fds, 3, "fixture: "};
  auto child = start_child([&] { exec_child(spec); });
  if (!child) throw std::runtime_error("cannot run " + args[0] + ": " + child.error().message);
  return std::move(*child);
}

// Runs `args` to completion; throws unless it exits 0.
void run(std::vector<std::string> args, int log) {
  std::string program = args[0];
  Child child = spawn(std::move(args), log);
  auto status = wait_child(child.pidfd.get(), true);
  if (!status || status->si_code != CLD_EXITED || status->si_status != 0)
    throw std::runtime_error(program + " failed; see the fixture's logs");
}

// A P-256 certificate for `cn`, signed by `ca` (self-signed without one), with `extensions`.
std::vector<std::string> certificate(const std::string& dir, const std::string& name, const std::string& cn,
                                     const std::string& ca, std::vector<std::string> extensions) {
  std::vector<std::string> args = {"/usr/bin/openssl",
                                   "req",
                                   "-x509",
                                   "-newkey",
                                   "ec",
                                   "-pkeyopt",
                                   "ec_paramgen_curve:P-256",
                                   "-nodes",
                                   "-days",
                                   "1",
                                   "-subj",
                                   "/CN=" + cn,
                                   "-keyout",
                                   dir + "/" + name + ".key",
                                   "-out",
                                   dir + "/" + name + ".crt"};
  if (!ca.empty())
    args.insert(args.end(), {"-CA", dir + "/" + ca + ".crt", "-CAkey", dir + "/" + ca + ".key"});
  for (auto& e : extensions) args.insert(args.end(), {"-addext", std::move(e)});
  return args;
}

std::string make_temp_dir() {
  std::string templ = (std::filesystem::temp_directory_path() / "xcg-etcd-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return templ;
}

size_t discard(char*, size_t size, size_t count, void*) { return size * count; }

}  // namespace

EtcdCluster::EtcdCluster(int members, Transport transport, std::chrono::milliseconds deadline)
    : transport_(transport), dir_(make_temp_dir()) {
  if (transport_ == Transport::tls) make_certificates();
  std::string initial;
  for (int i = 0; i < members; ++i) {
    Member m{"m" + std::to_string(i), url(transport_ == Transport::tls ? "https" : "http", free_port()),
             url("http", free_port())};
    initial += (i ? "," : "") + m.name + "=" + m.peer_url;
    members_.push_back(m);
  }
  try {
    for (auto& m : members_) start(m, initial);
    if (!wait_healthy(-1, deadline))
      throw std::runtime_error("etcd test cluster not healthy in time; logs in " + dir_);
  } catch (...) {
    stop_all();
    throw;
  }
}

EtcdCluster::~EtcdCluster() {
  stop_all();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void EtcdCluster::make_certificates() const {
  UniqueFd log(::open((dir_ + "/openssl.log").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  if (!log) throw std::runtime_error("cannot open the fixture's openssl log");
  const std::string leaf = "basicConstraints=CA:FALSE";
  run(certificate(dir_, "ca", "xcg-test-ca", "", {}), log.get());
  run(certificate(dir_, "other-ca", "xcg-other-ca", "", {}), log.get());
  run(certificate(dir_, "server", "etcd", "ca", {leaf, "subjectAltName=IP:127.0.0.1"}), log.get());
  run(certificate(dir_, "client", "xcg", "ca", {leaf, "extendedKeyUsage=clientAuth"}), log.get());
}

void EtcdCluster::start(Member& m, const std::string& initial_cluster) {
  std::vector<std::string> args = {"/usr/bin/etcd",
                                   "--name",
                                   m.name,
                                   "--data-dir",
                                   dir_ + "/" + m.name,
                                   "--listen-client-urls",
                                   m.client_url,
                                   "--advertise-client-urls",
                                   m.client_url,
                                   "--listen-peer-urls",
                                   m.peer_url,
                                   "--initial-advertise-peer-urls",
                                   m.peer_url,
                                   "--initial-cluster",
                                   initial_cluster,
                                   "--initial-cluster-state",
                                   "new",
                                   "--initial-cluster-token",
                                   "xcg-test",
                                   "--heartbeat-interval",
                                   "50",
                                   "--election-timeout",
                                   "500",
                                   "--auto-compaction-mode",
                                   "revision",
                                   "--auto-compaction-retention",
                                   "1000",
                                   "--log-level",
                                   "warn"};
  if (transport_ == Transport::tls)
    args.insert(args.end(), {"--cert-file", dir_ + "/server.crt", "--key-file", dir_ + "/server.key",
                             "--client-cert-auth", "--trusted-ca-file", ca_file()});
  UniqueFd log(::open((dir_ + "/" + m.name + ".log").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  if (!log) throw std::runtime_error("cannot open etcd's log");
  m.pid = spawn(std::move(args), log.get()).pid;
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> urls;
  for (const auto& m : members_) urls.push_back(m.client_url);
  return urls;
}

void EtcdCluster::kill(int member) {
  Member& m = members_.at(member);
  if (m.pid > 0) kill_and_reap(m.pid);
  m.pid = -1;
}

void EtcdCluster::pause(int member) { ::kill(members_.at(member).pid, SIGSTOP); }

void EtcdCluster::resume(int member) { ::kill(members_.at(member).pid, SIGCONT); }

void EtcdCluster::stop_all() noexcept {
  for (int i = 0; i < static_cast<int>(members_.size()); ++i) kill(i);
}

bool EtcdCluster::healthy(int member) const {
  CurlEasy easy(curl_easy_init());
  std::string health = endpoint(member) + "/health";
  curl_easy_setopt(easy.get(), CURLOPT_URL, health.c_str());
  curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT_MS, 500L);
  curl_easy_setopt(easy.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy.get(), CURLOPT_WRITEFUNCTION, &discard);
  std::string ca = ca_file(), cert = cert_file(), key = key_file();
  if (transport_ == Transport::tls) {
    curl_easy_setopt(easy.get(), CURLOPT_CAINFO, ca.c_str());
    curl_easy_setopt(easy.get(), CURLOPT_SSLCERT, cert.c_str());
    curl_easy_setopt(easy.get(), CURLOPT_SSLKEY, key.c_str());
  }
  long status = 0;
  if (curl_easy_perform(easy.get()) != CURLE_OK) return false;
  curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &status);
  return status == 200;
}

bool EtcdCluster::wait_healthy(int member, std::chrono::milliseconds deadline) const {
  auto until = std::chrono::steady_clock::now() + deadline;
  auto all_healthy = [&] {
    for (int i = 0; i < static_cast<int>(members_.size()); ++i)
      if ((member < 0 || member == i) && !healthy(i)) return false;
    return true;
  };
  while (!all_healthy()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling a process we cannot be told about
  }
  return true;
}

}  // namespace xcg::testing
