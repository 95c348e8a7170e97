#include "gateway/broker/config_watch.h"

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace xcg::gateway {
namespace {

struct WatchedConfig {
  fs::path dir;
  config::Config config;
  EventLoop loop;
  int changes = 0;
  ConfigWatch watch{loop, [this] { ++changes; }};

  WatchedConfig() {
    std::string templ = (fs::temp_directory_path() / "xcg-watch-XXXXXX").string();
    REQUIRE(::mkdtemp(templ.data()) != nullptr);
    dir = templ;
    config.path = (dir / "xcg.yaml").string();
    write("xcg.yaml");
    watch.follow(config);
  }
  ~WatchedConfig() { fs::remove_all(dir); }

  void write(const std::string& name) { std::ofstream(dir / name) << "domains: {}\n"; }
  bool changed_within(std::chrono::milliseconds wait) {
    return loop.run_until([this] { return changes > 0; }, wait);
  }
};

TEST_CASE("an edit of the config file is reported once it settles") {
  WatchedConfig w;
  w.write("xcg.yaml");
  CHECK(w.changed_within(5s));
  CHECK(w.changes == 1);
}

TEST_CASE("an edit made while a reload runs is reported after the reload follows the files again") {
  WatchedConfig w;
  w.write("xcg.yaml");  // the loop has not seen it yet, as when the broker is busy reloading
  w.watch.follow(w.config);
  CHECK(w.changed_within(5s));
}

TEST_CASE("an editor's swap file in the config's directory is not a change") {
  WatchedConfig w;
  w.write(".xcg.yaml.swp");
  CHECK_FALSE(w.changed_within(800ms));  // the settle time is 300 ms
}

}  // namespace
}  // namespace xcg::gateway
