// Helpers shared by the Xen backend's tests: a temporary directory, a scoped environment
// variable, a pty standing in for the one xenconsoled makes, and a fake domain-info source.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>

#include "base/unique_fd.h"
#include "xen/xen_ctrl.h"

namespace xcg::xen::testing {

class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/xcg-xen-test.XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    path_ = name;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = ::getenv(name)) old_ = old;
    REQUIRE(::setenv(name, value.c_str(), 1) == 0);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// What xenconsoled makes for a domain: a pty whose master it keeps and whose slave path it
// writes to xenstore. The test holds the master and plays the guest.
struct Pty {
  Pty() {
    int m = -1, s = -1;
    char name[128] = {};
    REQUIRE(::openpty(&m, &s, name, nullptr, nullptr) == 0);
    master.reset(m);
    slave.reset(s);  // xenconsoled keeps the slave open too, so readers never see EOF
    path = name;
    REQUIRE(set_nonblocking(master.get()));
  }
  UniqueFd master, slave;
  std::string path;
};

// Reads from `fd` until `text` has arrived or `deadline` has passed.
inline std::string read_until(int fd, const std::string& text, std::chrono::milliseconds deadline) {
  std::string got;
  auto end = std::chrono::steady_clock::now() + deadline;
  while (got.find(text) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[512];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_file(const std::string& path, const std::string& text, std::filesystem::perms perms) {
  {
    std::ofstream out(path);
    out << text;
  }
  std::filesystem::permissions(path, perms);
}

// libxenctrl as the tests want it: domains appear and change when the test says so.
class FakeDomainInfo final : public DomainInfoSource {
 public:
  Result<std::optional<DomainInfo>> info(uint32_t domid) const override {
    std::lock_guard lock(mu_);
    if (failing_) return fail(Errc::system, "libxenctrl: domain info: Permission denied");
    auto it = domains_.find(domid);
    if (it == domains_.end()) return std::optional<DomainInfo>();
    return std::optional<DomainInfo>(it->second);
  }
  void set(DomainInfo info) {
    std::lock_guard lock(mu_);
    domains_[info.domid] = info;
  }
  void erase(uint32_t domid) {
    std::lock_guard lock(mu_);
    domains_.erase(domid);
  }
  void set_failing(bool failing) {
    std::lock_guard lock(mu_);
    failing_ = failing;
  }

 private:
  mutable std::mutex mu_;
  std::map<uint32_t, DomainInfo> domains_;
  bool failing_ = false;
};

inline DomainInfo running_domain(uint32_t domid, uint64_t memory_mib = 512, unsigned vcpus = 2) {
  DomainInfo info;
  info.domid = domid;
  info.memory_kib = memory_mib * 1024;
  info.vcpus = vcpus;
  info.cpu_time = std::chrono::seconds(75);
  return info;
}

}  // namespace xcg::xen::testing
