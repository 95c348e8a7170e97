#include "tests/badinput/crypto.h"

#include <fcntl.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <cerrno>

#include "base/unique_fd.h"
#include "tests/badinput/wire.h"

namespace xcg::badinput {
namespace {

struct CtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, CtxFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, CtxFree>;
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
unsigned char* bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

tl::unexpected<Error> crypto_error(const char* what) { return fail(Errc::invalid_input, what); }

Result<std::string> read_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path);
  std::string text;
  char chunk[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read " + path);
    if (n == 0) return text;
    text.append(chunk, static_cast<size_t>(n));
    if (text.size() > 64 * 1024) return fail(Errc::invalid_input, path + ": too large for a key");
  }
}

Result<std::string> base64_decode(std::string_view text) {
  std::string clean;
  for (char c : text)
    if (c != '\n' && c != '\r' && c != ' ') clean.push_back(c);
  if (clean.empty() || clean.size() % 4 != 0) return crypto_error("bad base64");
  std::string out(clean.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(bytes(out), bytes(clean), static_cast<int>(clean.size()));
  if (n < 0) return crypto_error("bad base64");
  size_t padding = clean.ends_with("==") ? 2 : clean.ends_with("=") ? 1 : 0;
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

Result<std::string> raw_public(EVP_PKEY* key) {
  std::string pub(32, '\0');
  size_t len = pub.size();
  if (EVP_PKEY_get_raw_public_key(key, bytes(pub), &len) != 1 || len != 32)
    return crypto_error("cannot read a raw public key");
  return pub;
}

std::string ed25519_blob(std::string_view raw) { return Writer().string("ssh-ed25519").string(raw).bytes(); }

}  // namespace

std::string sha256(std::string_view data) {
  std::string digest(SHA256_DIGEST_LENGTH, '\0');
  SHA256(bytes(data), data.size(), bytes(digest));
  return digest;
}

// --- Ed25519Key ------------------------------------------------------------------------------

Result<Ed25519Key> Ed25519Key::load(const std::string& path) {
  auto text = read_file(path);
  if (!text) return tl::unexpected(text.error());
  constexpr std::string_view kBegin = "-----BEGIN OPENSSH PRIVATE KEY-----";
  constexpr std::string_view kEnd = "-----END OPENSSH PRIVATE KEY-----";
  auto begin = text->find(kBegin);
  auto end = text->find(kEnd);
  if (begin == std::string::npos || end == std::string::npos || end < begin)
    return fail(Errc::invalid_input, path + ": not an OpenSSH private key");
  auto raw =
      base64_decode(std::string_view(*text).substr(begin + kBegin.size(), end - begin - kBegin.size()));
  if (!raw) return tl::unexpected(raw.error());

  constexpr std::string_view kMagic{"openssh-key-v1\0", 15};
  if (!std::string_view(*raw).starts_with(kMagic)) return fail(Errc::invalid_input, path + ": bad magic");
  Reader r(std::string_view(*raw).substr(kMagic.size()));
  auto cipher = r.string();
  r.string();  // kdf name
  r.string();  // kdf options
  uint32_t count = r.u32();
  r.string();  // public key
  Reader priv(r.string());
  if (!r.ok() || cipher != "none" || count != 1)
    return fail(Errc::invalid_input, path + ": want one unencrypted key");
  uint32_t check1 = priv.u32();
  uint32_t check2 = priv.u32();
  auto type = priv.string();
  auto pub = priv.string();
  auto secret = priv.string();  // seed followed by the public key
  if (!priv.ok() || check1 != check2 || type != "ssh-ed25519" || pub.size() != 32 || secret.size() != 64)
    return fail(Errc::invalid_input, path + ": not an Ed25519 key");

  Ed25519Key key;
  key.key_.reset(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, bytes(secret), 32));
  if (!key.key_) return crypto_error("cannot import the Ed25519 key");
  key.blob_ = ed25519_blob(pub);
  return key;
}

Result<Ed25519Key> Ed25519Key::generate() {
  PkeyCtx ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1)
    return crypto_error("Ed25519 key generation failed");
  Ed25519Key key;
  key.key_.reset(raw);
  auto pub = raw_public(raw);
  if (!pub) return tl::unexpected(pub.error());
  key.blob_ = ed25519_blob(*pub);
  return key;
}

Result<std::string> Ed25519Key::sign(std::string_view data) const {
  MdCtx ctx(EVP_MD_CTX_new());
  std::string sig(64, '\0');
  size_t len = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), bytes(sig), &len, bytes(data), data.size()) != 1 || len != 64)
    return crypto_error("Ed25519 signing failed");
  return Writer().string("ssh-ed25519").string(sig).bytes();
}

// --- X25519 ----------------------------------------------------------------------------------

Result<X25519> X25519::generate() {
  PkeyCtx ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1)
    return crypto_error("X25519 key generation failed");
  X25519 x;
  x.key_.reset(raw);
  auto pub = raw_public(raw);
  if (!pub) return tl::unexpected(pub.error());
  x.public_ = *pub;
  return x;
}

Result<std::string> X25519::shared_secret(std::string_view peer_public) const {
  Pkey peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, bytes(peer_public), peer_public.size()));
  PkeyCtx ctx(EVP_PKEY_CTX_new(key_.get(), nullptr));
  std::string secret(32, '\0');
  size_t len = secret.size();
  if (!peer || !ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1 ||
      EVP_PKEY_derive(ctx.get(), bytes(secret), &len) != 1 || len != 32)
    return crypto_error("X25519 key agreement failed");
  return secret;
}

// --- host key signature ---------------------------------------------------------------------

Result<void> verify_host_signature(std::string_view host_key_blob, std::string_view signature_blob,
                                   std::string_view data) {
  Reader key(host_key_blob);
  auto key_type = key.string();
  auto raw_key = key.string();
  Reader sig(signature_blob);
  auto sig_type = sig.string();
  auto raw_sig = sig.string();
  if (!key.ok() || !sig.ok() || key_type != "ssh-ed25519" || sig_type != "ssh-ed25519" ||
      raw_key.size() != 32)
    return crypto_error("host key or signature is not ssh-ed25519");
  Pkey pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes(raw_key), raw_key.size()));
  MdCtx ctx(EVP_MD_CTX_new());
  if (!pkey || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1 ||
      EVP_DigestVerify(ctx.get(), bytes(raw_sig), raw_sig.size(), bytes(data), data.size()) != 1)
    return crypto_error("host key signature does not verify");
  return {};
}

// --- GcmDirection ----------------------------------------------------------------------------

GcmDirection::GcmDirection(std::string key, std::string iv) : key_(std::move(key)), iv_(std::move(iv)) {
  key_.resize(32);
  iv_.resize(12);
}

void GcmDirection::next_iv() {
  for (size_t i = iv_.size(); i-- > 4;) {
    if (++reinterpret_cast<unsigned char&>(iv_[i]) != 0) break;
  }
}

Result<std::string> GcmDirection::seal(std::string_view length_field, std::string_view plain) {
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  std::string out(plain.size() + kTagSize, '\0');
  int n = 0;
  int tail = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key_), bytes(iv_)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &n, bytes(length_field), static_cast<int>(length_field.size())) !=
          1 ||
      EVP_EncryptUpdate(ctx.get(), bytes(out), &n, bytes(plain), static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), bytes(out) + n, &tail) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, bytes(out) + plain.size()) != 1)
    return crypto_error("AES-GCM encryption failed");
  next_iv();
  return out;
}

Result<std::string> GcmDirection::open(std::string_view length_field, std::string_view sealed) {
  if (sealed.size() < kTagSize) return crypto_error("packet shorter than its tag");
  size_t len = sealed.size() - kTagSize;
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  std::string plain(len, '\0');
  std::string tag(sealed.substr(len));
  int n = 0;
  int tail = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key_), bytes(iv_)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &n, bytes(length_field), static_cast<int>(length_field.size())) !=
          1 ||
      EVP_DecryptUpdate(ctx.get(), bytes(plain), &n, bytes(sealed), static_cast<int>(len)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize, bytes(tag)) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), bytes(plain) + n, &tail) != 1)
    return crypto_error("AES-GCM tag does not verify");
  next_iv();
  return plain;
}

}  // namespace xcg::badinput
