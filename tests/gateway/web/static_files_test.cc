// The page's files as embed.py compiled them in: every file can be found, its gzip copy
// inflates to its body, and the page's integrity attributes are the files' SHA-384.
#include <openssl/evp.h>
#include <zlib.h>

#include <catch2/catch.hpp>

#include <regex>
#include <string>
#include <utility>

#include "gateway/web/static_files.h"

using xcg::gateway::web::find_static_file;
using xcg::gateway::web::static_files;
using xcg::gateway::web::StaticFile;

namespace {

std::string inflate_gzip(std::string_view gz, size_t expected) {
  std::string out(expected + 1, '\0');  // one spare byte: a longer result is caught
  z_stream z{};
  REQUIRE(inflateInit2(&z, 16 + MAX_WBITS) == Z_OK);  // 16: a gzip header, not zlib's
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  z.avail_in = static_cast<uInt>(gz.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  int rc = inflate(&z, Z_FINISH);
  out.resize(z.total_out);
  inflateEnd(&z);
  REQUIRE(rc == Z_STREAM_END);
  return out;
}

std::string sha384_sri(std::string_view body) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  REQUIRE(EVP_Digest(body.data(), body.size(), digest, &size, EVP_sha384(), nullptr) == 1);
  std::string b64(4 * ((size + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), digest, static_cast<int>(size));
  b64.resize(static_cast<size_t>(n));
  return "sha384-" + b64;
}

}  // namespace

TEST_CASE("the page is served at / and never cached", "[web][static]") {
  const StaticFile* page = find_static_file("/");
  REQUIRE(page != nullptr);
  CHECK(page->content_type == "text/html; charset=utf-8");
  CHECK_FALSE(page->immutable);
  CHECK(page->body.find("<div id=\"terminal\"") != std::string_view::npos);
  CHECK(find_static_file("/index.html") == nullptr);
  CHECK(find_static_file("/static/xterm.js.map") == nullptr);
}

TEST_CASE("the page has no inline script, style or event handler (the CSP forbids them)", "[web][static]") {
  std::string page(find_static_file("/")->body);
  CHECK(page.find("<style") == std::string::npos);
  CHECK(page.find("style=") == std::string::npos);
  CHECK_FALSE(std::regex_search(page, std::regex(R"(<script(?![^>]* src=))")));
  CHECK_FALSE(std::regex_search(page, std::regex(R"(\son[a-z]+=)")));
}

TEST_CASE("each /static file has a type, a gzip copy of its body and its hash", "[web][static]") {
  const std::string js = "text/javascript; charset=utf-8", css = "text/css; charset=utf-8";
  const std::pair<std::string, std::string> expected[] = {{"app.js", js},
                                                          {"csp-styles.js", js},
                                                          {"xterm.js", js},
                                                          {"addon-fit.js", js},
                                                          {"app.css", css},
                                                          {"xterm.css", css},
                                                          {"icon.svg", "image/svg+xml"}};
  for (const auto& [name, type] : expected) {
    INFO(name);
    const StaticFile* file = find_static_file("/static/" + name);
    REQUIRE(file != nullptr);
    CHECK(file->immutable);
    CHECK(file->content_type == type);
    REQUIRE(file->gzip.size() > 10);
    CHECK(file->gzip.substr(0, 2) == "\x1f\x8b");
    CHECK(inflate_gzip(file->gzip, file->body.size()) == file->body);
    CHECK(file->sha384 == sha384_sri(file->body));
  }
  CHECK(static_files().size() == 8);  // and the page
}

TEST_CASE("the page's integrity attributes are its files' hashes", "[web][static]") {
  std::string page(find_static_file("/")->body);
  std::regex tag(R"re((?:src|href)="(/static/[^"]+)" integrity="([^"]+)")re");
  int seen = 0;
  for (auto it = std::sregex_iterator(page.begin(), page.end(), tag); it != std::sregex_iterator(); ++it) {
    INFO((*it)[1].str());
    const StaticFile* file = find_static_file((*it)[1].str());
    REQUIRE(file != nullptr);
    CHECK((*it)[2].str() == sha384_sri(file->body));
    ++seen;
  }
  CHECK(seen == 6);  // every script and stylesheet of the page
}
