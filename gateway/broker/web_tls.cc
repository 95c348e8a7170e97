#include "gateway/broker/web_tls.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

#include "base/log.h"
#include "base/openssl_handles.h"
#include "base/unique_fd.h"
#include "base/wipe.h"
#include "gateway/broker/web_cert.h"

namespace xcg::gateway {
namespace {

constexpr off_t kMaxPemBytes = 1024 * 1024;
constexpr off_t kMaxSecretBytes = 64 * 1024;
constexpr size_t kMinSecretBytes = 32;

std::runtime_error file_error(const std::string& what, const std::string& path, std::string_view why) {
  return std::runtime_error(fmt::format("{} {}: {}", what, path, why));
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 || errno != ENOENT;
}

// Symlinks are followed on purpose: certificates from ACME clients are usually links.
struct OpenFile {
  UniqueFd fd;
  struct stat st {};
};

OpenFile open_regular(const std::string& what, const std::string& path, off_t max_bytes) {
  OpenFile f{UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK))};
  if (!f.fd) throw file_error(what, path, std::strerror(errno));
  if (::fstat(f.fd.get(), &f.st) != 0) throw file_error(what, path, std::strerror(errno));
  if (!S_ISREG(f.st.st_mode)) throw file_error(what, path, "not a regular file");
  if (f.st.st_size > max_bytes) throw file_error(what, path, "too large");
  return f;
}

std::string read_all(const std::string& what, const std::string& path, const OpenFile& f) {
  std::string text(static_cast<size_t>(f.st.st_size), '\0');
  if (::read(f.fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    throw file_error(what, path, "short read");
  return text;
}

void refuse_shared(const std::string& what, const std::string& path, const struct stat& st) {
  if (st.st_mode & (S_IRWXG | S_IRWXO))
    throw file_error(what, path, "readable or writable by group or others; chmod 600 it");
}

Bio bio_of(const std::string& text) {
  Bio bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!bio) throw std::runtime_error("out of memory reading PEM");
  return bio;
}

std::string pem_text(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

// Every certificate in the file, leaf first, written again as plain PEM.
std::vector<X509Cert> read_chain(const std::string& path, std::string& pem) {
  auto text = read_all("web TLS certificate", path, open_regular("web TLS certificate", path, kMaxPemBytes));
  auto in = bio_of(text);
  Bio out(BIO_new(BIO_s_mem()));
  std::vector<X509Cert> chain;
  while (X509Cert cert{PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr)}) {
    if (!out || PEM_write_bio_X509(out.get(), cert.get()) != 1) throw std::runtime_error("out of memory");
    chain.push_back(std::move(cert));
  }
  ERR_clear_error();  // the end of the file is reported as an error
  if (chain.empty()) throw file_error("web TLS certificate", path, "no PEM certificate in it");
  pem = pem_text(out.get());
  return chain;
}

// No passphrase prompt: an encrypted key is refused.
int no_passphrase(char*, int, int, void*) { return 0; }

EvpPkey read_key(const std::string& path, std::string& pem) {
  auto file = open_regular("web TLS key", path, kMaxPemBytes);
  refuse_shared("web TLS key", path, file.st);
  auto text = read_all("web TLS key", path, file);
  auto in = bio_of(text);
  EvpPkey key(PEM_read_bio_PrivateKey(in.get(), nullptr, no_passphrase, nullptr));
  wipe(text);
  if (!key) throw file_error("web TLS key", path, "not a PEM private key OpenSSL can read (or it is encrypted)");
  Bio out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_PrivateKey(out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    throw std::runtime_error("out of memory");
  pem = pem_text(out.get());
  return key;
}

std::string fingerprint_of(X509* leaf) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (X509_digest(leaf, EVP_sha256(), md, &len) != 1) throw std::runtime_error("SHA-256 failed");
  std::string out = "SHA256:";
  for (unsigned i = 0; i < len; ++i) out += fmt::format("{:02x}", md[i]);
  return out;
}

void make_parent(const std::string& path) {
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (dir.empty() || std::filesystem::exists(dir)) return;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw file_error("web TLS file", path, "cannot create its directory: " + ec.message());
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
}

// O_EXCL: never overwrite a file that appeared meanwhile. fchmod: whatever the umask.
void write_new(const std::string& what, const std::string& path, const std::string& text, mode_t mode) {
  make_parent(path);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd) throw file_error(what, path, std::strerror(errno));
  if (::fchmod(fd.get(), mode) != 0 ||
      ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) || ::fsync(fd.get()) != 0)
    throw file_error(what, path, std::string("write failed: ") + std::strerror(errno));
}

void make_pair(const config::WebSettings& web) {
  auto url = config::parse_public_url(web.public_url);
  if (!url) throw std::runtime_error("web.public_url: " + url.error().message);
  auto pair = make_self_signed(*url);
  write_new("web TLS key", web.tls_key, pair.key_pem, 0600);
  wipe(pair.key_pem);
  write_new("web TLS certificate", web.tls_cert, pair.cert_pem, 0644);
}

void require_both(const config::WebSettings& web) {
  bool cert = exists(web.tls_cert), key = exists(web.tls_key);
  if (cert && !key) throw file_error("web TLS key", web.tls_key, "missing, but its certificate is there");
  if (key && !cert)
    throw file_error("web TLS certificate", web.tls_cert, "missing, but its key is there");
}

std::string secret_problem(const std::string& path) {
  try {
    auto secret = load_panel_secret(path);
    wipe(secret);
    return "";
  } catch (const std::runtime_error& e) {
    return e.what();
  }
}

}  // namespace

WebTls load_web_tls(const config::WebSettings& web) {
  require_both(web);
  WebTls out;
  auto chain = read_chain(web.tls_cert, out.chain_pem);
  auto key = read_key(web.tls_key, out.key_pem);
  if (X509_check_private_key(chain.front().get(), key.get()) != 1)
    throw file_error("web TLS key", web.tls_key, "does not match the certificate in " + web.tls_cert);
  out.fingerprint = fingerprint_of(chain.front().get());
  return out;
}

WebTls load_or_make_web_tls(const config::WebSettings& web) {
  bool made = !exists(web.tls_cert) && !exists(web.tls_key);
  if (made) make_pair(web);
  auto out = load_web_tls(web);
  if (made)
    log::info("made a self-signed web certificate {} for {}: {}", web.tls_cert, web.public_url, out.fingerprint);
  return out;
}

std::string load_panel_secret(const std::string& path) {
  const char* what = "panel secret";
  auto file = open_regular(what, path, kMaxSecretBytes);
  uid_t me = ::geteuid();
  if (file.st.st_uid != 0 && (me == 0 || file.st.st_uid != me))
    throw file_error(what, path, me == 0 ? "not owned by root" : "owned by neither root nor this user");
  refuse_shared(what, path, file.st);
  if (static_cast<size_t>(file.st.st_size) < kMinSecretBytes)
    throw file_error(what, path, fmt::format("shorter than {} bytes; make one with head -c 32 /dev/urandom",
                                             kMinSecretBytes));
  return read_all(what, path, file);
}

std::vector<std::string> web_file_problems(const config::WebSettings& web) {
  std::vector<std::string> out;
  try {
    if (exists(web.tls_cert) || exists(web.tls_key)) load_web_tls(web);
  } catch (const std::runtime_error& e) {
    out.emplace_back(e.what());
  }
  if (!web.panel_secret_file.empty()) {
    auto problem = secret_problem(web.panel_secret_file);
    if (!problem.empty()) out.push_back(problem);
  }
  return out;
}

}  // namespace xcg::gateway
