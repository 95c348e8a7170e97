#include "config/public_key.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>

#include "base/ssh_handles.h"
#include "base/text.h"

// The line's syntax, the accepted types and the messages are ours; the key material is
// decoded and checked by libssh (with OpenSSL 3 it refuses an ECDSA point off its curve).
namespace xcg::config {
namespace {

constexpr std::string_view kSpace = " \t\r\n";
constexpr unsigned kMinRsaBits = 2048;

tl::unexpected<Error> bad(std::string message) { return fail(Errc::invalid_input, std::move(message)); }

// Splits off the first whitespace-separated word of `s`.
std::string_view next_word(std::string_view& s) {
  s = trim(s);
  auto end = s.find_first_of(kSpace);
  auto word = s.substr(0, end);
  s = end == std::string_view::npos ? std::string_view{} : s.substr(end);
  return word;
}

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

// EVP_DecodeBlock accepts '=' anywhere in the last quantum and keeps the padding bytes, so
// the text is checked strictly here first and the padding subtracted afterwards.
std::optional<std::string> decode_base64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  size_t padding = 0;
  if (text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
  for (size_t i = 0; i < text.size() - padding; ++i)
    if (!is_base64_char(text[i])) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0 || static_cast<size_t>(n) != out.size()) return std::nullopt;
  out.resize(out.size() - padding);
  return out;
}

std::string encode_base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// Splits off one RFC 4251 "string" (32-bit big-endian length, then the bytes) from `rest`.
std::optional<std::string_view> next_string(std::string_view& rest) {
  if (rest.size() < 4) return std::nullopt;
  auto b = reinterpret_cast<const unsigned char*>(rest.data());
  uint32_t len = uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3];
  if (rest.size() - 4 < len) return std::nullopt;
  auto field = rest.substr(4, len);
  rest.remove_prefix(4 + len);
  return field;
}

unsigned bit_length(std::string_view magnitude) {
  size_t i = 0;
  while (i < magnitude.size() && magnitude[i] == '\0') ++i;
  if (i == magnitude.size()) return 0;
  unsigned bits = static_cast<unsigned>(magnitude.size() - i - 1) * 8;
  for (auto top = static_cast<unsigned char>(magnitude[i]); top != 0; top >>= 1) ++bits;
  return bits;
}

struct KeyType {
  const char* name;
  unsigned bits;          // 0: the RSA modulus decides
  std::string_view must;  // what valid key data holds, for the message when it does not
};
constexpr std::array<KeyType, 5> kKeyTypes = {{
    {"ssh-ed25519", 256, "one 32-byte key"},
    {"ecdsa-sha2-nistp256", 256, "the curve name nistp256 and an uncompressed point on that curve"},
    {"ecdsa-sha2-nistp384", 384, "the curve name nistp384 and an uncompressed point on that curve"},
    {"ecdsa-sha2-nistp521", 521, "the curve name nistp521 and an uncompressed point on that curve"},
    {"ssh-rsa", 0, "a positive exponent and modulus"},
}};

const KeyType* find_type(std::string_view name) {
  for (const auto& t : kKeyTypes)
    if (name == t.name) return &t;
  return nullptr;
}

bool is_ecdsa(const KeyType& t) { return std::string_view(t.name).starts_with("ecdsa-sha2-"); }

// Key types we know but refuse, with the reason an operator needs to fix the line.
std::optional<std::string> refused_type_reason(std::string_view type) {
  if (type == "ssh-dss") return "DSA keys are obsolete";
  if (type.starts_with("sk-")) return "FIDO security keys are not supported";
  if (type.ends_with("-cert-v01@openssh.com"))
    return "certificates are not supported; list the plain public key";
  return std::nullopt;
}

// The accepted type named `type`, or why it is not accepted.
Result<const KeyType*> accepted_type(std::string_view type) {
  if (auto reason = refused_type_reason(type))
    return bad(fmt::format("unsupported key type '{}': {}", type, *reason));
  if (auto t = find_type(type)) return t;
  return bad(fmt::format("unknown key type '{}'", type));
}

bool looks_like_key_type(std::string_view word) {
  return find_type(word) || refused_type_reason(word).has_value() || word.starts_with("ecdsa-sha2-");
}

// authorized_keys lines may start with options ("command=...", "no-pty,restrict"): the
// first word then is no key type, but a key type follows later on the line.
bool starts_with_options(std::string_view first, std::string_view rest) {
  if (first.find_first_of("=\",") != std::string_view::npos) return true;
  while (!rest.empty()) {
    if (looks_like_key_type(next_word(rest))) return true;
  }
  return false;
}

tl::unexpected<Error> invalid_key_data(const KeyType& t) {
  return bad(fmt::format("key data is not a valid {} key: it must hold {}", t.name, t.must));
}

// libssh's base64 import skips the type name inside the blob, so it is compared here.
std::optional<std::string> inner_type_problem(std::string_view type, std::string_view blob) {
  auto inner = next_string(blob);
  if (!inner) return "key data is truncated";
  if (*inner == type) return std::nullopt;
  return fmt::format("key data is of type '{}', not '{}'", printable(*inner, 64), type);
}

// libssh decodes the key material and checks it (sizes, and that an ECDSA point is on the
// curve) as it builds the key.
Result<SshKey> import_key(const KeyType& t, std::string_view blob) {
  ssh_key raw = nullptr;
  int rc = ssh_pki_import_pubkey_base64(encode_base64(blob).c_str(), ssh_key_type_from_name(t.name), &raw);
  SshKey key(raw);
  if (rc != SSH_OK || !key) return invalid_key_data(t);
  return key;
}

// libssh takes the curve from the blob's curve name, whatever the type said.
std::optional<std::string> curve_problem(const KeyType& t, const SshKey& key) {
  if (!is_ecdsa(t)) return std::nullopt;
  const char* name = ssh_pki_key_ecdsa_name(key.get());
  std::string_view curve_type = name ? name : "";
  if (curve_type == t.name) return std::nullopt;
  curve_type.remove_prefix(std::min(curve_type.size(), std::string_view("ecdsa-sha2-").size()));
  return fmt::format("ECDSA curve '{}' does not match key type '{}'", curve_type, t.name);
}

// libssh's own encoding of `key`: what ssh-keygen writes for the same key.
Result<std::string> canonical_blob(const KeyType& t, const SshKey& key) {
  char* raw = nullptr;
  int rc = ssh_pki_export_pubkey_base64(key.get(), &raw);
  SshString text(raw);  // a zero RSA exponent or modulus imports, but does not export
  if (rc != SSH_OK || !text) return invalid_key_data(t);
  auto blob = decode_base64(text.get());
  if (!blob) return invalid_key_data(t);
  return std::move(*blob);
}

// The size of the key in `canonical`, libssh's encoding: there an RSA modulus (type name,
// exponent, modulus) has no leading zero bytes beyond the one a set top bit needs.
unsigned key_bits(const KeyType& t, std::string_view canonical) {
  if (t.bits != 0) return t.bits;
  std::optional<std::string_view> modulus;
  for (int i = 0; i < 3; ++i) modulus = next_string(canonical);
  return modulus ? bit_length(*modulus) : 0;
}

// The blob as given must be the canonical one: the fingerprint is of the bytes as given,
// and a key listed twice in two encodings must still be one key.
std::optional<std::string> encoding_problem(std::string_view blob, std::string_view canonical) {
  if (blob == canonical) return std::nullopt;
  if (blob.starts_with(canonical)) return "key data has trailing bytes";
  return "key data is not in canonical form: a number is negative or has leading zero bytes";
}

// Checks the key material of a blob whose type is `t`; returns the key size in bits.
Result<unsigned> check_key_data(const KeyType& t, std::string_view blob) {
  if (auto problem = inner_type_problem(t.name, blob)) return bad(*problem);
  auto key = import_key(t, blob);
  if (!key) return tl::unexpected(key.error());
  if (auto problem = curve_problem(t, *key)) return bad(*problem);
  auto canonical = canonical_blob(t, *key);
  if (!canonical) return tl::unexpected(canonical.error());
  unsigned bits = key_bits(t, *canonical);
  if (t.bits == 0 && bits < kMinRsaBits)
    return bad(fmt::format("RSA key has {} bits; at least {} are required", bits, kMinRsaBits));
  if (auto problem = encoding_problem(blob, *canonical)) return bad(*problem);
  return bits;
}

std::string sha256_of(std::string_view data) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("EVP_Digest(SHA-256) failed");  // only when out of memory
  return std::string(reinterpret_cast<const char*>(digest.data()), len);
}

}  // namespace

std::string fingerprint_of_blob(std::string_view blob) {
  std::string b64 = encode_base64(sha256_of(blob));
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  return "SHA256:" + b64;
}

std::string sha256_hex_of_blob(std::string_view blob) {
  std::string hex;
  for (unsigned char b : sha256_of(blob)) hex += fmt::format("{:02x}", b);
  return hex;
}

std::string PublicKey::fingerprint() const { return fingerprint_of_blob(blob); }

std::string PublicKey::openssh_line() const { return type + " " + encode_base64(blob); }

Result<PublicKey> public_key_from_blob(std::string_view type, std::string_view blob) {
  auto t = accepted_type(type);
  if (!t) return tl::unexpected(t.error());
  auto bits = check_key_data(**t, blob);
  if (!bits) return tl::unexpected(bits.error());
  return PublicKey{std::string(type), std::string(blob), "", *bits};
}

Result<PublicKey> parse_public_key(std::string_view line) {
  std::string_view rest = line;
  auto type = next_word(rest);
  if (type.empty()) return bad("empty key line");
  if (!looks_like_key_type(type) && starts_with_options(type, rest))
    return bad("key options are not supported (the line must start with the key type)");
  if (auto t = accepted_type(type); !t) return tl::unexpected(t.error());

  auto data = next_word(rest);
  if (data.empty()) return bad(fmt::format("key data is missing after '{}'", type));
  auto blob = decode_base64(data);
  if (!blob) return bad("key data is not valid base64");
  auto key = public_key_from_blob(type, *blob);
  if (key) key->comment = std::string(trim(rest));
  return key;
}

}  // namespace xcg::config
