#include "gateway/console/console_log.h"

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace xcg::gateway {
namespace {

struct LogDir {
  fs::path dir;
  LogDir() {
    std::string templ = (fs::temp_directory_path() / "xcg-console-log-XXXXXX").string();
    REQUIRE(::mkdtemp(templ.data()) != nullptr);
    dir = templ;
  }
  ~LogDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string path() const { return (dir / "logs" / "web1.log").string(); }
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_CASE("the console log creates its directory and appends") {
  LogDir d;
  ConsoleLog log(d.path(), 1024);
  log.append("boot\r\n");
  log.append("login: ");
  CHECK(read_file(d.path()) == "boot\r\nlogin: ");
  CHECK_FALSE(fs::exists(d.path() + ".1"));
}

TEST_CASE("past its bound the log moves to .1, replacing the older one, and the newest is kept") {
  LogDir d;
  ConsoleLog log(d.path(), 10);
  log.append("first-");   // 6 bytes
  log.append("second-");  // would pass 10: the file becomes .1 first
  log.append("third-");   // and again: "second-" replaces "first-"
  CHECK(read_file(d.path() + ".1") == "second-");
  CHECK(read_file(d.path()) == "third-");
}

TEST_CASE("the log rotates into a fresh directory when its directory was removed") {
  LogDir d;
  ConsoleLog log(d.path(), 10);
  log.append("before-");
  fs::remove_all(d.dir / "logs");
  log.append("after-rm");  // rotates: the open finds no directory
  CHECK(read_file(d.path()) == "after-rm");
  log.append("!");
  CHECK(read_file(d.path()) == "after-rm!");
}

TEST_CASE("a log reopened after a restart goes on counting from the file's size") {
  LogDir d;
  { ConsoleLog(d.path(), 10).append("12345678"); }
  ConsoleLog log(d.path(), 10);
  log.append("abc");  // 8 + 3 passes 10
  CHECK(read_file(d.path() + ".1") == "12345678");
  CHECK(read_file(d.path()) == "abc");
}

TEST_CASE("the tail spans the rotated file and the current one") {
  LogDir d;
  ConsoleLog log(d.path(), 16);
  log.append("one\r\ntwo\r\n");
  log.append("three\r\nlogin: ");  // rotates
  REQUIRE(fs::exists(d.path() + ".1"));
  CHECK(log.tail(2, 4096).value() == "three\r\nlogin: ");
  CHECK(log.tail(3, 4096).value() == "two\r\nthree\r\nlogin: ");
  CHECK(log.tail(100, 9).value() == "\r\nlogin: ");  // at most max_bytes
}

TEST_CASE("an empty path turns the log off") {
  ConsoleLog log("", 1024);
  log.append("nothing");
  auto tail = log.tail(10, 1024);
  REQUIRE_FALSE(tail);
  CHECK(tail.error().message == "the console log is not enabled");
}

}  // namespace
}  // namespace xcg::gateway
