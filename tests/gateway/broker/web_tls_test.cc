// The browser console's TLS pair (made on first start, then loaded and checked) and the panel
// secret's file rules.
#include "gateway/broker/web_tls.h"

#include <openssl/pem.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "base/openssl_handles.h"

using namespace xcg;
using namespace xcg::gateway;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "xcg_web_tls.XXXXXX").string();
    REQUIRE(::mkdtemp(templ.data()) != nullptr);
    path = templ;
  }
  ~TempDir() { fs::remove_all(path); }
};

config::WebSettings settings(const fs::path& dir, const std::string& url = "https://console.example") {
  config::WebSettings web;
  web.public_url = url;
  web.tls_cert = (dir / "tls" / "web.crt").string();
  web.tls_key = (dir / "tls" / "web.key").string();
  return web;
}

X509Cert leaf_of(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  return X509Cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

EvpPkey key_of(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  return EvpPkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

// The subjectAltName's first entry, as "DNS:name" or "IP:bytes-in-hex".
std::string first_san(X509* cert) {
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return "";
  std::string out;
  const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, 0);
  if (name->type == GEN_DNS)
    out = "DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(name->d.dNSName)));
  if (name->type == GEN_IPADD) out = "IP:" + std::to_string(ASN1_STRING_length(name->d.iPAddress));
  GENERAL_NAMES_free(names);
  return out;
}

// "SHA256:" + hex of the DER, computed here apart from the code under test.
std::string sha256_of_der(X509* cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  REQUIRE(len > 0);
  unsigned char md[32];
  unsigned md_len = 0;
  REQUIRE(EVP_Digest(der, size_t(len), md, &md_len, EVP_sha256(), nullptr) == 1);
  OPENSSL_free(der);
  std::string out = "SHA256:";
  char hex[3];
  for (unsigned i = 0; i < md_len; ++i) {
    std::snprintf(hex, sizeof hex, "%02x", md[i]);
    out += hex;
  }
  return out;
}

void write(const fs::path& path, const std::string& text, fs::perms mode) {
  std::ofstream(path, std::ios::binary) << text;
  fs::permissions(path, mode);
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("a missing pair is made: P-256, self-signed for the host, private key 0600", "[web_tls]") {
  TempDir dir;
  auto web = settings(dir.path);
  auto made = load_or_make_web_tls(web);
  CHECK((fs::status(dir.path / "tls").permissions() & fs::perms::all) == fs::perms::owner_all);
  CHECK((fs::status(web.tls_key).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
  CHECK((fs::status(web.tls_cert).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read));

  auto cert = leaf_of(made.chain_pem);
  auto key = key_of(made.key_pem);
  REQUIRE((cert && key));
  CHECK_THAT(made.key_pem, Contains("-----BEGIN PRIVATE KEY-----"));
  char group[64] = {};
  REQUIRE(EVP_PKEY_get_group_name(key.get(), group, sizeof group, nullptr) == 1);
  CHECK(std::string(group) == "prime256v1");
  CHECK(X509_check_private_key(cert.get(), key.get()) == 1);
  CHECK(first_san(cert.get()) == "DNS:console.example");
  CHECK(X509_check_issued(cert.get(), cert.get()) == X509_V_OK);
  CHECK(made.fingerprint == sha256_of_der(cert.get()));

  // About ten years: more than 9.9, less than 10.1.
  int days = 0, seconds = 0;
  REQUIRE(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(cert.get()), X509_get0_notAfter(cert.get())) ==
          1);
  CHECK((days > 3615 && days < 3690));

  auto again = load_or_make_web_tls(web);
  CHECK(again.fingerprint == made.fingerprint);
  CHECK(again.key_pem == made.key_pem);
  CHECK(again.chain_pem == made.chain_pem);
}

TEST_CASE("an IP address as the host goes into the SAN as an IP; serials differ", "[web_tls]") {
  TempDir a, b;
  auto one = load_or_make_web_tls(settings(a.path, "https://[::1]:8443"));
  auto two = load_or_make_web_tls(settings(b.path, "https://192.0.2.7"));
  auto cert_one = leaf_of(one.chain_pem), cert_two = leaf_of(two.chain_pem);
  CHECK(first_san(cert_one.get()) == "IP:16");
  CHECK(first_san(cert_two.get()) == "IP:4");
  CHECK(ASN1_INTEGER_cmp(X509_get0_serialNumber(cert_one.get()), X509_get0_serialNumber(cert_two.get())) !=
        0);
}

TEST_CASE("one file of the pair missing is an error naming it, and nothing is made", "[web_tls]") {
  TempDir dir;
  auto web = settings(dir.path);
  load_or_make_web_tls(web);
  fs::remove(web.tls_cert);
  CHECK(message_of([&] { load_or_make_web_tls(web); }) ==
        "web TLS certificate " + web.tls_cert + ": missing, but its key is there");
  CHECK(!fs::exists(web.tls_cert));
  CHECK(web_file_problems(web) ==
        std::vector<std::string>{"web TLS certificate " + web.tls_cert + ": missing, but its key is there"});

  TempDir other;
  auto web2 = settings(other.path);
  load_or_make_web_tls(web2);
  fs::remove(web2.tls_key);
  CHECK(message_of([&] { load_web_tls(web2); }) ==
        "web TLS key " + web2.tls_key + ": missing, but its certificate is there");
}

TEST_CASE("a key readable by group or others is refused", "[web_tls]") {
  TempDir dir;
  auto web = settings(dir.path);
  load_or_make_web_tls(web);
  fs::permissions(web.tls_key, fs::perms::group_read, fs::perm_options::add);
  CHECK(message_of([&] { load_or_make_web_tls(web); }) ==
        "web TLS key " + web.tls_key + ": readable or writable by group or others; chmod 600 it");
  CHECK(web_file_problems(web).size() == 1);
}

TEST_CASE("a key that does not match the certificate is refused", "[web_tls]") {
  TempDir a, b;
  auto one = settings(a.path), two = settings(b.path);
  load_or_make_web_tls(one);
  load_or_make_web_tls(two);
  fs::copy_file(two.tls_key, one.tls_key, fs::copy_options::overwrite_existing);
  CHECK(message_of([&] { load_web_tls(one); }) ==
        "web TLS key " + one.tls_key + ": does not match the certificate in " + one.tls_cert);
}

TEST_CASE("a key file with no key, or an encrypted one, is refused", "[web_tls]") {
  TempDir dir;
  auto web = settings(dir.path);
  load_or_make_web_tls(web);
  auto key = key_of(load_web_tls(web).key_pem);
  Bio bio(BIO_new(BIO_s_mem()));
  char pass[] = "passphrase";
  REQUIRE(PEM_write_bio_PrivateKey(bio.get(), key.get(), EVP_aes_256_cbc(), nullptr, 0, nullptr, pass) == 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  write(web.tls_key, std::string(data, size_t(len)), fs::perms::owner_read | fs::perms::owner_write);
  const std::string refused =
      "web TLS key " + web.tls_key + ": not a PEM private key OpenSSL can read (or it is encrypted)";
  CHECK(message_of([&] { load_web_tls(web); }) == refused);
  write(web.tls_key, "not PEM\n", fs::perms::owner_read | fs::perms::owner_write);
  CHECK(message_of([&] { load_web_tls(web); }) == refused);
}

TEST_CASE("a certificate file with no certificate is refused", "[web_tls]") {
  TempDir dir;
  auto web = settings(dir.path);
  load_or_make_web_tls(web);
  write(web.tls_cert, "not PEM\n", fs::perms::owner_read | fs::perms::owner_write);
  CHECK(message_of([&] { load_web_tls(web); }) ==
        "web TLS certificate " + web.tls_cert + ": no PEM certificate in it");
}

TEST_CASE("the panel secret: 32 bytes or more, private, the file's bytes exactly", "[web_tls]") {
  TempDir dir;
  auto path = (dir.path / "panel.secret").string();
  const std::string secret = "0123456789abcdef0123456789abcdef\n";
  write(path, secret, fs::perms::owner_read | fs::perms::owner_write);
  CHECK(load_panel_secret(path) == secret);

  config::WebSettings web = settings(dir.path);
  web.panel_secret_file = path;
  CHECK(web_file_problems(web).empty());  // and the TLS pair, both missing, is fine too

  fs::permissions(path, fs::perms::others_read, fs::perm_options::add);
  auto shared = message_of([&] { load_panel_secret(path); });
  CHECK(shared == "panel secret " + path + ": readable or writable by group or others; chmod 600 it");
  CHECK(web_file_problems(web) == std::vector<std::string>{shared});

  const std::string short_secret = "tooshort-tooshort-tooshort-31by";
  write(path, short_secret, fs::perms::owner_read | fs::perms::owner_write);
  auto too_short = message_of([&] { load_panel_secret(path); });
  CHECK(too_short ==
        "panel secret " + path + ": shorter than 32 bytes; make one with head -c 32 /dev/urandom");
  CHECK_THAT(too_short, !Contains("tooshort"));

  CHECK_THAT(message_of([&] { load_panel_secret((dir.path / "none").string()); }),
             Contains("No such file or directory"));
  CHECK_THAT(message_of([&] { load_panel_secret(dir.path.string()); }), Contains("not a regular file"));
}

TEST_CASE("the panel secret must be root's when running as root", "[web_tls]") {
  if (::geteuid() != 0) return;  // only root can give a file away
  TempDir dir;
  auto path = (dir.path / "panel.secret").string();
  write(path, std::string(40, 'k'), fs::perms::owner_read | fs::perms::owner_write);
  REQUIRE(::chown(path.c_str(), 65534, 65534) == 0);
  CHECK(message_of([&] { load_panel_secret(path); }) == "panel secret " + path + ": not owned by root");
}

// Run in a child that has dropped to an unprivileged user: root's file or its own, no other.
TEST_CASE("the panel secret may be the current user's when not running as root", "[web_tls]") {
  if (::geteuid() != 0) return;  // the test needs root to set up the owners
  TempDir dir;
  fs::permissions(dir.path, fs::perms::owner_all | fs::perms::others_exec);
  auto owned = [&](const char* name, uid_t uid) {
    auto path = (dir.path / name).string();
    write(path, std::string(40, 'k'), fs::perms::owner_read | fs::perms::owner_write);
    REQUIRE(::chown(path.c_str(), uid, uid) == 0);
    return path;
  };
  auto mine = owned("mine", 65534), others = owned("others", 65533);
  fs::permissions(others, fs::perms::others_read, fs::perm_options::add);  // else open fails first
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(10);
    bool mine_ok = message_of([&] { load_panel_secret(mine); }) == "no error";
    bool others_refused = message_of([&] { load_panel_secret(others); }) ==
                          "panel secret " + others + ": owned by neither root nor this user";
    ::_exit(mine_ok ? (others_refused ? 0 : 12) : 11);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
