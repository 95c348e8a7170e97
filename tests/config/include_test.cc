// `include:` — domains in further files, validated together with the main file.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "config/config.h"
#include "tests/config/samples.h"

namespace xcg::config {
namespace {

using namespace xcg::config::samples;

namespace fs = std::filesystem;
using Lines = std::vector<std::string>;

const std::string kCarol =
    "ecdsa-sha2-nistp384 "
    "AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBK2fkWcuhwsRW/"
    "qDGmCyMRYRdoCS0piY0mxZu50js/bfTRkA4agikQ+PT6EKJJqWKFNTD5S/"
    "GOy+JLnC9CJZcYsKYnKoP1HDsBiKipOOg8QLn1Lp4bieyVrNdtXdVm8bLw== carol@ecdsa384";

std::string blob_of(const std::string& line) {
  auto key = parse_public_key(line);
  REQUIRE(key);
  return key->blob;
}

// A scratch directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "xcg_include_test.XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

  // Creates the parent directories too.
  std::string write(const std::string& name, const std::string& text) const {
    auto file = path_ / name;
    fs::create_directories(file.parent_path());
    UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    REQUIRE(fd);
    REQUIRE(::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    return file.string();
  }

 private:
  fs::path path_;
};

// A main file with domain web1 (Alice's key on line 6) and `include_line` as line 7.
std::string main_text(const std::string& include_line) {
  return "listen: [\"127.0.0.1:0\"]\n"
         "host_keys: [host_key]\n"
         "hypervisor: sim\n"
         "domains:\n"
         "  web1:\n"
         "    keys: [\"" +
         kAlice + "\"]\n" + include_line + "\n";
}

// An included file: `domain` with one key on line 3, column 9.
std::string domain_text(const std::string& domain, const std::string& key) {
  return "domains:\n  " + domain + ":\n    keys:\n      - " + key + "\n";
}

// Every problem's "FILE:LINE:COLUMN: message"; empty if the config is valid.
Lines problems_of(const std::string& path) {
  try {
    load_config(path);
  } catch (const ConfigError& e) {
    Lines out;
    for (const auto& p : e.problems()) out.push_back(p.str());
    return out;
  }
  return {};
}

TEST_CASE("include: files and patterns add their domains, in sorted order") {
  TempDir dir;
  auto main = dir.write("xcg.yaml", main_text("include: [extra.yaml, \"domains.d/*.yaml\"]"));
  auto extra = dir.write("extra.yaml", domain_text("web2", kBob));
  // Written out of order: the pattern's matches are read sorted.
  auto b = dir.write("domains.d/b.yaml", "domains:\n  db:\n    actions: [console]\n");
  auto a = dir.write("domains.d/a.yaml", domain_text("mail", kCarol));
  dir.write("domains.d/notes.txt", "not: yaml: at all");
  dir.write("domains.d/.hidden.yaml", "listen: []");

  auto c = load_config(main);
  CHECK(c->path == main);
  REQUIRE(c->domains.size() == 4);
  CHECK(c->domains.at("web2").keys.at(0).where.str() == extra + ":4:9");
  CHECK(c->domains.at("web2").where.str() == extra + ":2:3");
  CHECK(c->domains.at("mail").keys.at(0).where.str() == a + ":4:9");
  CHECK(c->domains.at("db").actions == std::vector<Action>{Action::console});
  CHECK(c->domains.at("web1").where.str() == main + ":5:3");
  for (const auto& [key, domain] :
       {std::pair(kAlice, "web1"), std::pair(kBob, "web2"), std::pair(kCarol, "mail")}) {
    INFO(domain);
    REQUIRE(c->domain_for_key(blob_of(key)) != nullptr);
    CHECK(c->domain_for_key(blob_of(key))->name == domain);
  }
  CHECK(c->source_files == Lines{main, extra, a, b});
  CHECK(c->watch_dirs == Lines{dir.path().string(), dir / "domains.d"});
}

TEST_CASE("include: source_files and watch_dirs are absolute, even from a relative path") {
  TempDir dir;
  dir.write("conf/xcg.yaml", main_text("include: [\"/nowhere/xcg-test/*.yaml\", \"d/*.yaml\"]"));
  dir.write("conf/d/x.yaml", domain_text("web2", kBob));
  auto cwd = fs::current_path();
  fs::current_path(dir.path());
  std::shared_ptr<const Config> c;
  CHECK_NOTHROW(c = load_config("conf/xcg.yaml"));
  fs::current_path(cwd);
  REQUIRE(c);
  CHECK(c->path == "conf/xcg.yaml");
  CHECK(c->source_files == Lines{dir / "conf/xcg.yaml", dir / "conf/d/x.yaml"});
  CHECK(c->watch_dirs == Lines{"/nowhere/xcg-test", dir / "conf/d"});
}

TEST_CASE("include: a pattern matching nothing is fine, a missing plain file is not") {
  TempDir dir;
  SECTION("patterns matching nothing, in an empty or a missing directory") {
    fs::create_directory(dir.path() / "empty.d");
    auto main = dir.write("xcg.yaml", main_text("include: [\"empty.d/*.yaml\", \"gone.d/*\", "
                                                "\"x?.yaml\", \"[ab].yaml\"]"));
    auto c = load_config(main);
    CHECK(c->domains.size() == 1);
    CHECK(c->source_files == Lines{main});
    CHECK(c->watch_dirs == Lines{dir / "empty.d", dir / "gone.d", dir.path().string()});
  }
  SECTION("include: with nothing, or an empty list") {
    for (const char* line : {"include:", "include: []"}) {
      INFO(line);
      auto main = dir.write("xcg.yaml", main_text(line));
      CHECK(load_config(main)->source_files == Lines{main});
    }
  }
  SECTION("a plain path that does not exist") {
    auto main = dir.write("xcg.yaml", main_text("include: [extra.yaml]"));
    CHECK(problems_of(main) == Lines{dir / "extra.yaml" +
                                     ":1:1: cannot open: No such file or directory (included "
                                     "from " +
                                     main + ":7:11)"});
  }
  SECTION("a directory where a file should be") {
    fs::create_directory(dir.path() / "sub.d");
    auto main = dir.write("xcg.yaml", main_text("include: [sub.d]"));
    CHECK(problems_of(main) ==
          Lines{dir / "sub.d" + ":1:1: not a regular file (included from " + main + ":7:11)"});
  }
  SECTION("a FIFO or a device matched by a pattern, next to a good file") {
    // The broker reloads in its event loop: opening the FIFO must not wait for a writer, and
    // reading /dev/zero must not go on until the size cap.
    dir.write("domains.d/a.yaml", "domains:\n  web2: {}\n");
    REQUIRE(::mkfifo((dir / "domains.d/b.yaml").c_str(), 0600) == 0);
    fs::create_symlink("/dev/zero", dir.path() / "domains.d" / "c.yaml");
    auto main = dir.write("xcg.yaml", main_text("include: [\"domains.d/*.yaml\"]"));
    CHECK(problems_of(main) ==
          Lines{dir / "domains.d/b.yaml" + ":1:1: not a regular file (included from " + main + ":7:11)",
                dir / "domains.d/c.yaml" + ":1:1: not a regular file (included from " + main + ":7:11)"});
  }
}

TEST_CASE("include: a directory that cannot be read is an error, not an empty match") {
  TempDir dir;
  // A symlink loop fails even for root, unlike a mode of 000.
  fs::create_directory_symlink("loop", dir.path() / "loop");
  auto main = dir.write("xcg.yaml", main_text("include: [\"loop/*.yaml\"]"));
  CHECK(problems_of(main) == Lines{main + ":7:11: include 'loop/*.yaml': cannot read directory '" +
                                   dir / "loop" + "': Too many levels of symbolic links"});
}

TEST_CASE("include: must be a list of non-empty paths") {
  TempDir dir;
  auto problems = [&](const std::string& line) {
    return problems_of(dir.write("xcg.yaml", main_text(line)));
  };
  auto main = dir / "xcg.yaml";
  CHECK(problems("include: extra.yaml") == Lines{main + ":7:10: include: expected a list of strings"});
  CHECK(problems("include: [[a]]") ==
        Lines{main + ":7:11: include: expected a list of strings; this item is not a string"});
  CHECK(problems("include: [\"\"]") == Lines{main + ":7:11: include: a path must not be empty"});
}

TEST_CASE("include: an included file holds only domains") {
  TempDir dir;
  auto main = dir.write("xcg.yaml", main_text("include: [\"d/*.yaml\"]"));
  SECTION("other fields") {
    auto x =
        dir.write("d/x.yaml", "listen: [\"127.0.0.1:22\"]\n" + domain_text("web2", kBob) + "limits: {}\n");
    CHECK(problems_of(main) ==
          Lines{x + ":1:1: field 'listen' is not allowed here: only 'domains' may appear in an "
                    "included file",
                x + ":6:1: field 'limits' is not allowed here: only 'domains' may appear in an "
                    "included file"});
  }
  SECTION("no nested includes") {
    dir.write("d/y.yaml", domain_text("web3", kCarol));
    auto x = dir.write("d/x.yaml", domain_text("web2", kBob) + "include: [y.yaml]\n");
    CHECK(problems_of(main) == Lines{x + ":5:1: include: an included file cannot include others"});
  }
  SECTION("the top must be a mapping with domains") {
    auto x = dir.write("d/x.yaml", "- web2\n");
    auto y = dir.write("d/y.yaml", "# all customers moved away\n");
    auto z = dir.write("d/z.yaml", "domains:\n");
    CHECK(problems_of(main) == Lines{x + ":1:1: expected a mapping with 'domains' at the top",
                                     y + ":1:1: missing required field 'domains'"});
    (void)z;  // "domains:" with none is fine
  }
  SECTION("domains in an included file follow the main file's schema") {
    auto x = dir.write("d/x.yaml",
                       "domains:\n  web2:\n    vcpus: 0\n    colour: blue\n"
                       "  bad/name: {}\n");
    CHECK(problems_of(main) ==
          Lines{x + ":3:12: vcpus: expected an integer from 1 to 512, got '0'",
                x + ":4:5: unknown field 'colour': expected actions, on_login, memory, vcpus, "
                    "keys, config_file or console",
                x + ":5:3: bad domain name 'bad/name': expected 1 to 64 letters, digits, '_', "
                    "'.' or '-', starting with a letter or digit"});
  }
}

TEST_CASE("include: a domain defined in two files is an error naming both") {
  TempDir dir;
  auto main = dir.write("xcg.yaml", main_text("include: [\"d/*.yaml\"]"));
  auto a = dir.write("d/a.yaml", domain_text("web2", kBob));
  SECTION("in the main file and an included one") {
    auto b = dir.write("d/b.yaml", "domains:\n  db: {}\n  web1: {}\n");
    CHECK(problems_of(main) == Lines{b + ":3:3: domain 'web1' is already defined at " + main + ":5:3"});
  }
  SECTION("in two included files") {
    auto b = dir.write("d/b.yaml", "domains:\n  web2:\n    memory: 1024\n");
    CHECK(problems_of(main) == Lines{b + ":2:3: domain 'web2' is already defined at " + a + ":2:3"});
  }
}

TEST_CASE("include: a key listed twice across files is an error naming both places") {
  TempDir dir;
  auto main = dir.write("xcg.yaml", main_text("include: [\"d/*.yaml\"]"));
  auto a = dir.write("d/a.yaml", domain_text("web2", kBob));
  SECTION("the main file's key again in an included file") {
    auto b = dir.write("d/b.yaml", domain_text("web3", kAlice));
    CHECK(problems_of(main) ==
          Lines{b + ":4:9: key " + kAliceFingerprint +
                " (alice@laptop) is already listed for domain 'web1' at " + main + ":6:12"});
  }
  SECTION("one included file's key again in another, as a read-only mapping") {
    auto b = dir.write("d/b.yaml",
                       "domains:\n  web3:\n    keys:\n      - {key: \"" + kBob + "\", readonly: true}\n");
    CHECK(problems_of(main) == Lines{b + ":4:15: key " + kBobFingerprint +
                                     " (bob@ecdsa256) is already listed for domain 'web2' at " + a + ":4:9"});
  }
}

TEST_CASE("include: a file matched twice is read once; the main file is never included") {
  TempDir dir;
  SECTION("two patterns matching the same file") {
    auto main = dir.write("xcg.yaml", main_text("include: [\"d/*.yaml\", d/a.yaml, ./d/../d/a.yaml]"));
    auto a = dir.write("d/a.yaml", domain_text("web2", kBob));
    auto c = load_config(main);
    CHECK(c->domains.size() == 2);
    CHECK(c->source_files == Lines{main, a});
  }
  SECTION("a pattern matching the main file") {
    auto main = dir.write("xcg.yaml", main_text("include: [\"*.yaml\"]"));
    auto other = dir.write("other.yaml", domain_text("web2", kBob));
    CHECK(problems_of(main) ==
          Lines{main + ":7:11: include: '" + main +
                "' is the main config file itself; keep included files in a directory of their "
                "own"});
  }
}

TEST_CASE("include: YAML syntax errors are reported in the included file") {
  TempDir dir;
  auto main = dir.write("xcg.yaml", main_text("include: [\"d/*.yaml\"]"));
  auto a = dir.write("d/a.yaml", "domains:\n  web2:\n    keys: [\"" + kBob + "\"\n  web3: {}\n");
  CHECK(problems_of(main) == Lines{a + ":4:3: YAML syntax error: end of sequence flow not found"});
}

TEST_CASE("include: problems in every file are reported together, files in reading order") {
  TempDir dir;
  auto main = dir.write("xcg.yaml", "run_as: root\n" + main_text("include: [z.yaml, \"d/*.yaml\"]"));
  auto z = dir.write("z.yaml", "domains:\n  web2:\n    vcpus: 0\n");
  auto a = dir.write("d/a.yaml", "domains:\n  web3: {actions: [fly]}\n");
  CHECK(problems_of(main) ==
        Lines{main + ":1:9: run_as: must not be root: sessions would keep full privileges",
              z + ":3:12: vcpus: expected an integer from 1 to 512, got '0'",
              a + ":2:20: unknown action 'fly': expected console, start, shutdown, reboot, "
                  "destroy or sysrq"});
}

TEST_CASE("include: a half-written included file fails the whole config") {
  TempDir dir;
  auto main = dir.write("xcg.yaml", main_text("include: [\"d/*.yaml\"]"));
  dir.write("d/a.yaml", domain_text("web2", kBob));
  const std::string whole = "domains:\n  web3:\n    keys:\n      - \"" + kCarol + "\"\n";
  auto b = dir.write("d/b.yaml", whole);
  REQUIRE(load_config(main)->domains.size() == 3);

  // A provisioning system caught mid-write: cut inside the quoted key, and cut to nothing.
  dir.write("d/b.yaml", whole.substr(0, whole.find("carol")));
  // The parser stops at the end of the file: line 4, after "      - \"" and the key's start.
  CHECK(problems_of(main) == Lines{b + ":4:" + std::to_string(10 + kCarol.find("carol")) +
                                   ": YAML syntax error: illegal EOF in scalar"});

  dir.write("d/b.yaml", "");
  CHECK(problems_of(main) == Lines{b + ":1:1: missing required field 'domains'"});
}

TEST_CASE("include: with includes, the main file needs no domains of its own") {
  TempDir dir;
  auto main = dir.write("xcg.yaml",
                        "listen: [\"127.0.0.1:0\"]\nhost_keys: [k]\nhypervisor: sim\n"
                        "include: [\"d/*.yaml\"]\n");
  dir.write("d/a.yaml", domain_text("web2", kBob));
  CHECK(load_config(main)->domains.size() == 1);
  dir.write("xcg.yaml", "listen: [\"127.0.0.1:0\"]\nhost_keys: [k]\nhypervisor: sim\n");
  CHECK(problems_of(main) == Lines{main + ":1:1: missing required field 'domains'"});
}

TEST_CASE("include: glob characters in the main file's directory are taken literally") {
  TempDir dir;
  auto main = dir.write("x[1]/xcg.yaml", main_text("include: [\"d/*.yaml\"]"));
  auto a = dir.write("x[1]/d/a.yaml", domain_text("web2", kBob));
  dir.write("x1/d/b.yaml", domain_text("web3", kCarol));  // what "x[1]" matches as a pattern
  auto c = load_config(main);
  CHECK(c->domains.size() == 2);
  CHECK(c->source_files == Lines{main, a});
  CHECK(c->watch_dirs == Lines{dir / "x[1]/d"});
}

TEST_CASE("include: relative paths in an included file are relative to its directory") {
  TempDir dir;
  auto main = dir.write("xcg.yaml", main_text("include: [\"d/*.yaml\"]"));
  dir.write("d/a.yaml", "domains:\n  web2:\n    config_file: xen/web2.cfg\n");
  auto c = load_config(main);
  CHECK(c->domains.at("web2").config_file == dir / "d/xen/web2.cfg");
}

TEST_CASE("include: parse_config resolves includes against the path's directory") {
  TempDir dir;
  dir.write("extra.yaml", domain_text("web2", kBob));
  auto c = parse_config(main_text("include: [extra.yaml]"), dir / "xcg.yaml");
  REQUIRE(c->domains.size() == 2);
  CHECK(c->domain_for_key(blob_of(kBob))->name == "web2");
  CHECK(c->source_files == Lines{dir / "xcg.yaml", dir / "extra.yaml"});
}

}  // namespace
}  // namespace xcg::config
