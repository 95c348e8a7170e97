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

std::string url(int port) { return "http://127.0.0.1:" + std::to_string(port); }

std::string make_temp_dir() {
  std::string templ = (std::filesystem::temp_directory_path() / "xcg-etcd-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return templ;
}

size_t discard(char*, size_t size, size_t count, void*) { return size * count; }

}  // namespace

EtcdCluster::EtcdCluster(int members, std::chrono::milliseconds deadline) : dir_(make_temp_dir()) {
  std::string initial;
  for (int i = 0; i < members; ++i) {
    Member m{"m" + std::to_string(i), url(free_port()), url(free_port())};
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
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  UniqueFd log(::open((dir_ + "/" + m.name + ".log").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  if (!devnull || !log) throw std::runtime_error("cannot open etcd's log");
  int fds[] = {devnull.get(), log.get(), log.get()};
  ExecSpec spec{argv[0], argv.data(), envp, fds, 3, "etcd: "};
  auto child = start_child([&] { exec_child(spec); });
  if (!child) throw std::runtime_error("cannot start etcd: " + child.error().message);
  m.pid = child->pid;
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
