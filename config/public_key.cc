#include "config/public_key.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>

#include "base/text.h"
namespace xcg::config {
namespace {

constexpr std::string_view kSpace = " \t\r\n";

tl::unexpected<Error> bad(std::string message) {
  return fail(Errc::invalid_input, std::move(message));
}

// Splits off the first whitespace-separated word of `s`.
std::string_view next_word(std::string_view& s) {
  s = trim(s);
  auto end = s.find_first_of(kSpace);
  auto word = s.substr(0, end);
  s = end == std::string_view::npos ? std::string_view{} : s.substr(end);
  return word;
}


bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
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
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0 || static_cast<size_t>(n) != out.size()) return std::nullopt;
  out.resize(out.size() - padding);
  return out;
}

std::string encode_base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// Reads RFC 4251 "string" fields from a key blob.
class BlobReader {
 public:
  explicit BlobReader(std::string_view blob) : rest_(blob) {}

  std::optional<std::string_view> string() {
    if (rest_.size() < 4) return std::nullopt;
    auto b = reinterpret_cast<const unsigned char*>(rest_.data());
    uint32_t len = uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3];
    if (rest_.size() - 4 < len) return std::nullopt;
    auto field = rest_.substr(4, len);
    rest_.remove_prefix(4 + len);
    return field;
  }
  bool at_end() const { return rest_.empty(); }

 private:
  std::string_view rest_;
};

constexpr char kTruncated[] = "key data is truncated";

unsigned bit_length(std::string_view magnitude) {
  size_t i = 0;
  while (i < magnitude.size() && magnitude[i] == '\0') ++i;
  if (i == magnitude.size()) return 0;
  unsigned bits = static_cast<unsigned>(magnitude.size() - i - 1) * 8;
  for (auto top = static_cast<unsigned char>(magnitude[i]); top != 0; top >>= 1) ++bits;
  return bits;
}

// RFC 4251 mpint: two's complement, so a set top bit means a negative number.
bool is_positive_mpint(std::string_view m) {
  return !m.empty() && (static_cast<unsigned char>(m[0]) & 0x80) == 0 && bit_length(m) > 0;
}

Result<unsigned> check_ed25519(BlobReader& r) {
  auto key = r.string();
  if (!key) return bad(kTruncated);
  if (key->size() != 32)
    return bad(fmt::format("ed25519 key is {} bytes; expected 32", key->size()));
  return 256;
}

struct Curve {
  std::string_view type;
  std::string_view name;
  size_t point_size;
  unsigned bits;
};
constexpr std::array<Curve, 3> kCurves = {{
    {"ecdsa-sha2-nistp256", "nistp256", 65, 256},
    {"ecdsa-sha2-nistp384", "nistp384", 97, 384},
    {"ecdsa-sha2-nistp521", "nistp521", 133, 521},
}};

Result<unsigned> check_ecdsa(const Curve& curve, BlobReader& r) {
  auto name = r.string();
  if (!name) return bad(kTruncated);
  if (*name != curve.name)
    return bad(fmt::format("ECDSA curve '{}' does not match key type '{}'", *name, curve.type));
  auto point = r.string();
  if (!point) return bad(kTruncated);
  if (point->size() != curve.point_size || (*point)[0] != '\x04')
    return bad(fmt::format("ECDSA point is not an uncompressed {}-byte {} point", curve.point_size,
                           curve.name));
  return curve.bits;
}

Result<unsigned> check_rsa(BlobReader& r) {
  auto e = r.string();
  auto n = e ? r.string() : std::nullopt;
  if (!n) return bad(kTruncated);
  if (!is_positive_mpint(*e) || !is_positive_mpint(*n))
    return bad("RSA key has a zero or negative exponent or modulus");
  unsigned bits = bit_length(*n);
  if (bits < 2048) return bad(fmt::format("RSA key has {} bits; at least 2048 are required", bits));
  return bits;
}

// Checks what follows the type name in the blob; returns the key size in bits.
Result<unsigned> check_type_specific(std::string_view type, BlobReader& r) {
  if (type == "ssh-ed25519") return check_ed25519(r);
  if (type == "ssh-rsa") return check_rsa(r);
  for (const auto& c : kCurves)
    if (c.type == type) return check_ecdsa(c, r);
  return bad(fmt::format("unknown key type '{}'", type));
}

// Key types we know but refuse, with the reason an operator needs to fix the line.
std::optional<std::string> refused_type_reason(std::string_view type) {
  if (type == "ssh-dss") return "DSA keys are obsolete";
  if (type.starts_with("sk-")) return "FIDO security keys are not supported";
  if (type.ends_with("-cert-v01@openssh.com"))
    return "certificates are not supported; list the plain public key";
  return std::nullopt;
}

bool is_accepted_type(std::string_view type) {
  if (type == "ssh-ed25519" || type == "ssh-rsa") return true;
  for (const auto& c : kCurves)
    if (c.type == type) return true;
  return false;
}

// Why `type` is not accepted, or nothing if it is.
std::optional<std::string> type_problem(std::string_view type) {
  if (auto reason = refused_type_reason(type))
    return fmt::format("unsupported key type '{}': {}", type, *reason);
  if (!is_accepted_type(type)) return fmt::format("unknown key type '{}'", type);
  return std::nullopt;
}

bool looks_like_key_type(std::string_view word) {
  return is_accepted_type(word) || refused_type_reason(word).has_value() ||
         word.starts_with("ecdsa-sha2-");
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

}  // namespace

namespace {

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
  if (auto problem = type_problem(type)) return bad(*problem);

  BlobReader r(blob);
  auto inner = r.string();
  if (!inner) return bad(kTruncated);
  if (*inner != type)
    return bad(fmt::format("key data is of type '{}', not '{}'", printable(*inner, 64), type));

  auto bits = check_type_specific(type, r);
  if (!bits) return tl::unexpected(bits.error());
  if (!r.at_end()) return bad("key data has trailing bytes");
  return PublicKey{std::string(type), std::string(blob), "", *bits};
}

Result<PublicKey> parse_public_key(std::string_view line) {
  std::string_view rest = line;
  auto type = next_word(rest);
  if (type.empty()) return bad("empty key line");
  if (!looks_like_key_type(type) && starts_with_options(type, rest))
    return bad("key options are not supported (the line must start with the key type)");
  if (auto problem = type_problem(type)) return bad(*problem);

  auto data = next_word(rest);
  if (data.empty()) return bad(fmt::format("key data is missing after '{}'", type));
  auto blob = decode_base64(data);
  if (!blob) return bad("key data is not valid base64");
  auto key = public_key_from_blob(type, *blob);
  if (key) key->comment = std::string(trim(rest));
  return key;
}

}  // namespace xcg::config
