#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include "base/sd_notify.h"
#include "base/unique_fd.h"

namespace sd = xcg::sd_notify;
using xcg::UniqueFd;

namespace {

// Sets an environment variable for one test and puts the old value back.
class EnvVar {
 public:
  EnvVar(const char* name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    int rc = value ? ::setenv(name, value->c_str(), 1) : ::unsetenv(name);
    REQUIRE(rc == 0);
  }
  ~EnvVar() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// What the service manager does: a datagram socket that receives the notifications.
class FakeServiceManager {
 public:
  // `name` as NOTIFY_SOCKET spells it: "/path" or "@abstract".
  explicit FakeServiceManager(std::string name) : name_(std::move(name)) {
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd_.valid());
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(name_.size() < sizeof addr.sun_path);
    std::memcpy(addr.sun_path, name_.data(), name_.size());
    bool abstract = name_[0] == '@';
    if (abstract) addr.sun_path[0] = '\0';
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size() + (abstract ? 0 : 1));
    REQUIRE(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0);
  }

  const std::string& name() const { return name_; }

  // The next datagram, or nothing if none arrives within a second.
  std::optional<std::string> receive() {
    pollfd p{fd_.get(), POLLIN, 0};
    int ready = ::poll(&p, 1, 1000);
    REQUIRE(ready >= 0);
    if (ready == 0) return std::nullopt;
    char buf[4096];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
    REQUIRE(n >= 0);
    return std::string(buf, static_cast<size_t>(n));
  }

  bool nothing_waiting() {
    pollfd p{fd_.get(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }

 private:
  std::string name_;
  UniqueFd fd_;
};

std::string temp_dir() {
  std::string pattern = "/tmp/xcg-sd-notify-XXXXXX";
  REQUIRE(::mkdtemp(pattern.data()) != nullptr);
  return pattern;
}

unsigned long long monotonic_usec() {
  timespec now{};
  REQUIRE(::clock_gettime(CLOCK_MONOTONIC, &now) == 0);
  return static_cast<unsigned long long>(now.tv_sec) * 1000000ULL +
         static_cast<unsigned long long>(now.tv_nsec) / 1000ULL;
}

}  // namespace

TEST_CASE("sd_notify sends READY, STATUS, STOPPING to a path socket") {
  std::string dir = temp_dir();
  {
    FakeServiceManager manager(dir + "/notify");
    EnvVar env("NOTIFY_SOCKET", manager.name());

    REQUIRE(sd::ready("listening on 127.0.0.1:2222"));
    CHECK(manager.receive() == "READY=1\nSTATUS=listening on 127.0.0.1:2222");
    REQUIRE(sd::ready());
    CHECK(manager.receive() == "READY=1");
    REQUIRE(sd::status("3 sessions"));
    CHECK(manager.receive() == "STATUS=3 sessions");
    REQUIRE(sd::stopping());
    CHECK(manager.receive() == "STOPPING=1");
    REQUIRE(sd::send("WATCHDOG=1"));
    CHECK(manager.receive() == "WATCHDOG=1");
    CHECK(manager.nothing_waiting());
  }
  REQUIRE(::unlink((dir + "/notify").c_str()) == 0);
  REQUIRE(::rmdir(dir.c_str()) == 0);
}

TEST_CASE("sd_notify reaches an abstract socket") {
  FakeServiceManager manager(fmt::format("@xcg-sd-notify-test-{}", ::getpid()));
  EnvVar env("NOTIFY_SOCKET", manager.name());
  REQUIRE(sd::stopping());
  CHECK(manager.receive() == "STOPPING=1");
}

TEST_CASE("RELOADING carries the monotonic time of the reload") {
  FakeServiceManager manager(fmt::format("@xcg-sd-notify-reload-{}", ::getpid()));
  EnvVar env("NOTIFY_SOCKET", manager.name());
  auto before = monotonic_usec();
  REQUIRE(sd::reloading());
  auto after = monotonic_usec();
  auto got = manager.receive();
  REQUIRE(got);
  std::string prefix = "RELOADING=1\nMONOTONIC_USEC=";
  REQUIRE(got->rfind(prefix, 0) == 0);
  auto usec = std::stoull(got->substr(prefix.size()));
  CHECK(usec >= before);
  CHECK(usec <= after);
}

TEST_CASE("a status can't smuggle in another assignment") {
  FakeServiceManager manager(fmt::format("@xcg-sd-notify-status-{}", ::getpid()));
  EnvVar env("NOTIFY_SOCKET", manager.name());
  REQUIRE(sd::status("bad config\nREADY=1\r"));
  CHECK(manager.receive() == "STATUS=bad config READY=1 ");
  REQUIRE(sd::ready("a\nb"));
  CHECK(manager.receive() == "READY=1\nSTATUS=a b");
}

TEST_CASE("without NOTIFY_SOCKET nothing is sent and nothing fails") {
  FakeServiceManager manager(fmt::format("@xcg-sd-notify-unset-{}", ::getpid()));
  {
    EnvVar env("NOTIFY_SOCKET", std::nullopt);
    CHECK(sd::ready("x"));
    CHECK(sd::reloading());
    CHECK(sd::stopping());
  }
  {
    EnvVar env("NOTIFY_SOCKET", "");
    CHECK(sd::ready());
  }
  CHECK(manager.nothing_waiting());
}

TEST_CASE("a bad NOTIFY_SOCKET is an error, not a crash") {
  SECTION("relative path") {
    EnvVar env("NOTIFY_SOCKET", "run/notify");
    auto r = sd::ready();
    REQUIRE_FALSE(r);
    CHECK(r.error().code == xcg::Errc::invalid_input);
  }
  SECTION("longer than sun_path") {
    EnvVar env("NOTIFY_SOCKET", "/" + std::string(200, 'x'));
    auto r = sd::ready();
    REQUIRE_FALSE(r);
    CHECK(r.error().code == xcg::Errc::invalid_input);
  }
  SECTION("nobody listening") {
    std::string dir = temp_dir();
    EnvVar env("NOTIFY_SOCKET", dir + "/missing");
    auto r = sd::ready();
    REQUIRE_FALSE(r);
    CHECK(r.error().code == xcg::Errc::system);
    CHECK(r.error().sys_errno == ENOENT);
    REQUIRE(::rmdir(dir.c_str()) == 0);
  }
}

TEST_CASE("stderr is the journal only when JOURNAL_STREAM names fd 2") {
  struct stat st {};
  REQUIRE(::fstat(2, &st) == 0);
  auto dev = static_cast<unsigned long long>(st.st_dev);
  auto ino = static_cast<unsigned long long>(st.st_ino);
  {
    EnvVar env("JOURNAL_STREAM", fmt::format("{}:{}", dev, ino));
    CHECK(sd::stderr_is_journal());
  }
  {
    EnvVar env("JOURNAL_STREAM", fmt::format("{}:{}", dev, ino + 1));
    CHECK_FALSE(sd::stderr_is_journal());
  }
  {
    EnvVar env("JOURNAL_STREAM", fmt::format("{}:{}x", dev, ino));
    CHECK_FALSE(sd::stderr_is_journal());
  }
  {
    EnvVar env("JOURNAL_STREAM", "garbage");
    CHECK_FALSE(sd::stderr_is_journal());
  }
  {
    EnvVar env("JOURNAL_STREAM", std::nullopt);
    CHECK_FALSE(sd::stderr_is_journal());
  }
}

TEST_CASE("one_line replaces every line break") {
  CHECK(sd::one_line("a\nb\r\nc") == "a b  c");
  CHECK(sd::one_line("").empty());
}
