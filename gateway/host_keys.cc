#include "gateway/host_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

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
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) != SSH_OK) throw key_error(path, "key generation failed");
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

}  // namespace

std::vector<std::string> load_or_create_host_keys(const std::vector<std::string>& paths) {
  std::vector<std::string> pems;
  for (const auto& path : paths) {
    if (::access(path.c_str(), F_OK) != 0) generate(path);
    pems.push_back(read_key(path));
  }
  return pems;
}

}  // namespace xcg::gateway
