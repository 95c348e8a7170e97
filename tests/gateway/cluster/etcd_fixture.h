// A real etcd cluster for tests: N members of /usr/bin/etcd on loopback, on free ports, in a
// temporary directory, killed and reaped (and the directory removed) at the end.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace xcg::testing {

class EtcdCluster {
 public:
  // With tls, clients speak https and must show a certificate of the test CA (files below).
  enum class Transport { plain, tls };
  // Throws std::runtime_error when the members are not all healthy within `deadline`.
  explicit EtcdCluster(int members, Transport transport = Transport::plain,
                       std::chrono::milliseconds deadline = std::chrono::seconds(20));
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;
  ~EtcdCluster();

  std::vector<std::string> endpoints() const;  // the client URLs, member 0 first
  const std::string& endpoint(int member) const { return members_.at(member).client_url; }

  void kill(int member);           // SIGKILL, reaped
  void pause(int member);          // SIGSTOP: connections open, nothing answers
  void resume(int member);         // SIGCONT
  bool healthy(int member) const;  // its /health says so (blocking, short timeout)
  // Waits until `member` is healthy (every member when -1); false at the deadline.
  bool wait_healthy(int member, std::chrono::milliseconds deadline) const;
  const std::string& dir() const { return dir_; }
  // With Transport::tls: the CA that signed the members' and the client's certificates, the
  // client's pair, and a CA that signed nothing here.
  std::string ca_file() const { return dir_ + "/ca.crt"; }
  std::string cert_file() const { return dir_ + "/client.crt"; }
  std::string key_file() const { return dir_ + "/client.key"; }
  std::string other_ca_file() const { return dir_ + "/other-ca.crt"; }

 private:
  struct Member {
    std::string name;
    std::string client_url;
    std::string peer_url;
    pid_t pid = -1;
  };
  void make_certificates() const;
  void start(Member& m, const std::string& initial_cluster);
  void stop_all() noexcept;

  Transport transport_;
  std::string dir_;
  std::vector<Member> members_;
};

}  // namespace xcg::testing
