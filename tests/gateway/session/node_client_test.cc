// A front's SSH client (node_client.h) against a real node: `xcg serve` on simulated domains,
// logged in to as a customer would be (the node's acceptance of fronts is the node's own and
// tested there). Needs the xcg binary (XCG_BINARY, which meson's test() sets).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "gateway/session/node_client.h"
#include "gateway/session/node_command.h"
#include "gateway/session/seccomp_filter.h"

using namespace xcg;
using namespace xcg::gateway;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string fingerprint_of(ssh_key key) {
  unsigned char* hash = nullptr;
  size_t length = 0;
  REQUIRE(ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &length) == SSH_OK);
  SshString text(ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, length));
  ssh_clean_pubkey_hash(&hash);
  return text.get();
}

// One `xcg serve` with the domain web1, which `customer` may log in to; stopped at the end.
class Node {
 public:
  explicit Node(ssh_key customer, ssh_key front = nullptr) {
    char name[] = "/tmp/xcg-node-test.XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    dir_ = name;
    char* b64 = nullptr;
    REQUIRE(ssh_pki_export_pubkey_base64(customer, &b64) == SSH_OK);
    std::ofstream(dir_ + "/xcg.yaml") << "listen: [\"127.0.0.1:0\"]\nhost_keys: [\"" << dir_
                                      << "/hostkey\"]\nhypervisor: sim\naudit_log: \"-\"\n"
                                      << "domains:\n  web1:\n    keys: [\"ssh-ed25519 " << b64 << " c\"]\n";
    ssh_string_free_char(b64);
    if (front != nullptr) {
      REQUIRE(ssh_pki_export_pubkey_base64(front, &b64) == SSH_OK);
      std::ofstream(dir_ + "/xcg.yaml", std::ios::app) << "fronts: [\"ssh-ed25519 " << b64 << " front\"]\n";
      ssh_string_free_char(b64);
    }
    start();
  }
  ~Node() {
    if (pid_ > 0) ::kill(pid_, SIGTERM), ::waitpid(pid_, nullptr, 0);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  uint16_t port() const { return port_; }
  std::string host_key_fingerprint() const {
    ssh_key raw = nullptr;
    REQUIRE(ssh_pki_import_privkey_file((dir_ + "/hostkey").c_str(), nullptr, nullptr, nullptr, &raw) ==
            SSH_OK);
    SshKey key(raw);
    return fingerprint_of(key.get());
  }

 private:
  void start() {
    std::string log = dir_ + "/serve.log", config = dir_ + "/xcg.yaml", control = dir_ + "/ctl.sock";
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, 1), ::dup2(fd, 2);
      ::execl(std::getenv("XCG_BINARY"), "xcg", "serve", "--config", config.c_str(), "--control-socket",
              control.c_str(), "--no-watch", nullptr);
      ::_exit(127);
    }
    std::regex listening("listening on 127\\.0\\.0\\.1:(\\d+)");
    std::smatch m;
    for (auto end = Clock::now() + 20s; Clock::now() < end; ::poll(nullptr, 0, 20)) {
      std::string text = read_file(log);
      if (std::regex_search(text, m, listening)) {
        port_ = static_cast<uint16_t>(std::stoi(m[1]));
        return;
      }
    }
    FAIL("xcg serve did not listen: " << read_file(log));
  }
  std::string dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

UniqueFd connect_to(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(set_nonblocking(fd.get()));
  return fd;
}

SshKey new_key() {
  ssh_key raw = nullptr;
  REQUIRE(ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) == SSH_OK);
  return SshKey(raw);
}

struct Ran {
  std::string output;
  int exit_status = -1;
};

// The channel's output until the node closes it, and its exit status.
Ran run_to_end(NodeChannel& node) {
  ssh_set_blocking(node.session.get(), 1);
  Ran ran;
  char buffer[4096];
  int n;
  while ((n = ssh_channel_read_timeout(node.channel.get(), buffer, sizeof buffer, 0, 10000)) > 0)
    ran.output.append(buffer, static_cast<size_t>(n));
  ran.exit_status = ssh_channel_get_exit_status(node.channel.get());
  return ran;
}

NodeLogin customer_login(const Node& node, ssh_key key, std::string command) {
  return NodeLogin{"node-b", node.host_key_fingerprint(), "web1",
                   key,      PtySize{"xterm", 100, 30},   std::move(command)};
}

bool have_binary() {
  if (std::getenv("XCG_BINARY") != nullptr) return true;
  WARN("skipped: XCG_BINARY is not set (run the tests through meson)");
  return false;
}

}  // namespace

TEST_CASE("the node client logs in with its key, asks for a pty and runs a command", "[node_client]") {
  if (!have_binary()) return;
  SshKey key = new_key();
  Node node(key.get());
  auto channel = open_node_channel(connect_to(node.port()), customer_login(node, key.get(), "status"),
                                   Clock::now() + 10s);
  REQUIRE(channel);
  Ran ran = run_to_end(*channel);
  CHECK(ran.output.find("web1") != std::string::npos);
  CHECK(ran.exit_status == 0);
}

TEST_CASE("the node client refuses a node whose host key is not the registry's", "[node_client]") {
  if (!have_binary()) return;
  SshKey key = new_key();
  Node node(key.get());
  NodeLogin login = customer_login(node, key.get(), "status");
  login.host_key_fingerprint = fingerprint_of(new_key().get());
  auto channel = open_node_channel(connect_to(node.port()), login, Clock::now() + 10s);
  REQUIRE_FALSE(channel);
  CHECK(channel.error().message == "host key mismatch");
}

TEST_CASE("the node client gives up at its deadline", "[node_client]") {
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) == 0);
  UniqueFd silent(pair[1]);  // a peer that never says a word
  SshKey key = new_key();
  NodeLogin login{"node-b", "SHA256:x", "web1", key.get(), std::nullopt, std::nullopt};
  auto started = Clock::now();
  auto channel = open_node_channel(UniqueFd(pair[0]), login, started + 300ms);
  REQUIRE_FALSE(channel);
  CHECK(channel.error().code == Errc::timeout);
  CHECK(Clock::now() - started < 5s);
}

// The session's seccomp filter has no socket or connect, and kills on setsockopt: the client
// must get by with the socket the broker passed.
TEST_CASE("the node client runs inside the session's seccomp filter", "[node_client]") {
  if (!have_binary()) return;
  SshKey key = new_key();
  Node node(key.get());
  UniqueFd socket = connect_to(node.port());
  NodeLogin login = customer_login(node, key.get(), "status");
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (!install_seccomp_filter()) ::_exit(3);
    auto channel = open_node_channel(std::move(socket), login, Clock::now() + 10s);
    ::_exit(channel ? 0 : 4);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  INFO("wait status " << status);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

namespace {

NodeLogin front_login(const Node& node, ssh_key front) {
  return NodeLogin{"node-b", node.host_key_fingerprint(), front_user("web1", "browser", false),
                   front,    PtySize{"xterm", 80, 24},    "console",
                   true};
}

// Runs the commands at once on further channels of the connection, until all are answered.
std::vector<NodeAnswer> ask_at_once(NodeChannel& node, const std::vector<std::string>& commands) {
  std::vector<NodeCommand> running;
  running.reserve(commands.size());
  for (const auto& c : commands) running.emplace_back(node.session.get(), c, Clock::now() + 10s);
  for (bool all_done = false; !all_done;) {
    pollfd p{ssh_get_fd(node.session.get()), POLLIN, 0};
    ::poll(&p, 1, 50);
    all_done = true;
    for (auto& r : running) r.step(Clock::now()), all_done = all_done && r.done();
  }
  std::vector<NodeAnswer> answers;
  answers.reserve(running.size());
  for (const auto& r : running) answers.push_back(r.answer());
  return answers;
}

}  // namespace

TEST_CASE("a front gets the node's actions and at most four command channels beside its console",
          "[node_client]") {
  if (!have_binary()) return;
  SshKey customer = new_key(), front = new_key();
  Node node(customer.get(), front.get());
  auto channel =
      open_node_channel(connect_to(node.port()), front_login(node, front.get()), Clock::now() + 10s);
  REQUIRE(channel);
  CHECK(channel->actions == "console start shutdown reboot destroy sysrq");
  auto answers = ask_at_once(*channel, {"status", "status", "who", "log -n 5", "status"});
  int answered = 0;
  for (const auto& a : answers) answered += a.ok;
  CHECK(answered == 4);  // the fifth channel at once is refused
  CHECK(answers[0].text.starts_with("web1: running"));
  CHECK(answers[4] == NodeAnswer{false, "the node refused the request"});
  // Channels that ended make room again, and a command that is not a front's is refused.
  answers = ask_at_once(*channel, {"status", "console", "weblink", "help"});
  CHECK(answers[0].ok);
  for (size_t i = 1; i < answers.size(); ++i)
    CHECK(answers[i] == NodeAnswer{false, "the node refused the request"});
}

TEST_CASE("a customer's own login gets one channel only", "[node_client]") {
  if (!have_binary()) return;
  SshKey customer = new_key();
  Node node(customer.get());
  NodeLogin login = customer_login(node, customer.get(), "console");
  login.ask_actions = true;
  auto channel = open_node_channel(connect_to(node.port()), login, Clock::now() + 10s);
  REQUIRE(channel);
  CHECK(channel->actions == std::nullopt);  // refused: the console is the one channel
  auto answers = ask_at_once(*channel, {"status"});
  CHECK(answers[0] == NodeAnswer{false, "the node refused the request"});
}
