#include "gateway/broker/host_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <set>

#include <fmt/format.h>

#include "base/log.h"
#include "base/unique_fd.h"
#include "gateway/ssh_handles.h"

namespace xcg::gateway {
namespace {

std::runtime_error key_error(const std::string& path, std::string_view why) {
  return std::runtime_error(fmt::format("host key {}: {}", path, why));
}

void generate(const std::string& path) {
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty() && !std::filesystem::exists(dir)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) throw key_error(path, "cannot create directory: " + ec.message());
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  }
  ssh_key raw = nullptr;
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) != SSH_OK)
    throw key_error(path, "key generation failed");
  SshKey key(raw);
  char* pem = nullptr;
  if (ssh_pki_export_privkey_base64(key.get(), nullptr, nullptr, nullptr, &pem) != SSH_OK)
    throw key_error(path, "key export failed");
  SshString text(pem);
  // O_EXCL: never overwrite a key that appeared meanwhile.
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) throw key_error(path, std::strerror(errno));
  size_t len = std::strlen(text.get());
  if (::write(fd.get(), text.get(), len) != static_cast<ssize_t>(len) || ::fsync(fd.get()) != 0)
    throw key_error(path, std::string("write failed: ") + std::strerror(errno));
  log::info("generated host key {}", path);
}

std::string read_key(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) throw key_error(path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw key_error(path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw key_error(path, "not a regular file");
  if (st.st_mode & (S_IRWXG | S_IRWXO)) throw key_error(path, "readable by others; chmod 600 it");
  if (st.st_size > 64 * 1024) throw key_error(path, "too large to be a key");
  std::string text(static_cast<size_t>(st.st_size), '\0');
  if (::read(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    throw key_error(path, "short read");
  ssh_key raw = nullptr;
  if (ssh_pki_import_privkey_base64(text.c_str(), nullptr, nullptr, nullptr, &raw) != SSH_OK)
    throw key_error(path, "not a private key libssh can read (or it is encrypted)");
  SshKey key(raw);
  return text;
}

int sshfp_algorithm(std::string_view type) {
  if (type == "ssh-rsa") return 1;
  if (type.starts_with("ecdsa-sha2-")) return 3;
  if (type == "ssh-ed25519") return 4;
  return 0;
}

// "TYPE BASE64" of the public half of a private key in PEM text.
std::string public_line(const std::string& pem, const std::string& path) {
  ssh_key raw = nullptr;
  if (ssh_pki_import_privkey_base64(pem.c_str(), nullptr, nullptr, nullptr, &raw) != SSH_OK)
    throw key_error(path, "cannot read the key");
  SshKey priv(raw);
  ssh_key pub_raw = nullptr;
  if (ssh_pki_export_privkey_to_pubkey(priv.get(), &pub_raw) != SSH_OK)
    throw key_error(path, "no public key");
  SshKey pub(pub_raw);
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(pub.get(), &b64) != SSH_OK) throw key_error(path, "cannot export the key");
  SshString text(b64);
  return fmt::format("{} {}", ssh_key_type_to_char(ssh_key_type(pub.get())), text.get());
}

}  // namespace

std::vector<std::string> host_key_records(const config::Config& config, std::string host) {
  if (host.empty()) {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) throw std::runtime_error("gethostname failed");
    host = name;
  }
  auto pems = load_or_create_host_keys(config.host_keys);
  std::vector<std::string> known_hosts, sshfp;
  for (size_t i = 0; i < pems.size(); ++i) {
    std::string line = public_line(pems[i], config.host_keys[i]);
    auto key = config::parse_public_key(line);
    if (!key) throw key_error(config.host_keys[i], key.error().message);
    std::set<uint16_t> ports;
    for (const auto& l : config.listen) ports.insert(l.port);
    for (uint16_t port : ports)
      known_hosts.push_back(port == 22 ? fmt::format("{} {}", host, line)
                                       : fmt::format("[{}]:{} {}", host, port, line));
    sshfp.push_back(fmt::format("{} IN SSHFP {} 2 {}", host, sshfp_algorithm(key->type),
                                config::sha256_hex_of_blob(key->blob)));
  }
  known_hosts.insert(known_hosts.end(), sshfp.begin(), sshfp.end());
  return known_hosts;
}

std::string ed25519_host_key_fingerprint(const std::vector<std::string>& pems,
                                         const std::vector<std::string>& paths) {
  for (size_t i = 0; i < pems.size(); ++i) {
    auto key = config::parse_public_key(public_line(pems[i], paths[i]));
    if (!key) throw key_error(paths[i], key.error().message);
    if (key->type == "ssh-ed25519") return key->fingerprint();
  }
  throw std::runtime_error("a fleet node needs an Ed25519 host key: fronts pin it (add one to host_keys)");
}

std::vector<std::string> load_or_create_host_keys(const std::vector<std::string>& paths) {
  std::vector<std::string> pems;
  for (const auto& path : paths) {
    if (::access(path.c_str(), F_OK) != 0) generate(path);
    pems.push_back(read_key(path));
  }
  return pems;
}

}  // namespace xcg::gateway
