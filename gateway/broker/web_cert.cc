#include "gateway/broker/web_cert.h"

#include <openssl/pem.h>
#include <openssl/rand.h>

#include <array>
#include <functional>
#include <stdexcept>

#include "base/openssl_handles.h"

namespace xcg::gateway {
namespace {

constexpr long kValidDays = 3653;  // ten years, leap days included
constexpr size_t kMaxCommonName = 64;

void must(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("making the web certificate: ") + what + " failed");
}

// 159 random bits: positive, and unpredictable as CAs' serials must be.
void set_random_serial(X509* cert) {
  std::array<unsigned char, 20> bytes{};
  must(RAND_bytes(bytes.data(), int(bytes.size())) == 1, "RAND_bytes");
  bytes[0] &= 0x7f;
  BigNum serial(BN_bin2bn(bytes.data(), int(bytes.size()), nullptr));
  must(serial && BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)), "the serial");
}

void set_names(X509* cert, const config::PublicUrl& url) {
  X509_NAME* name = X509_get_subject_name(cert);
  if (url.host.size() <= kMaxCommonName)
    must(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(url.host.c_str()), -1, -1, 0),
         "the subject");
  must(X509_set_issuer_name(cert, name) == 1, "the issuer");
}

// The host is a checked DNS name or IP address (parse_public_url), so it holds no ','.
void add_extension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509Ext ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  must(ext && X509_add_ext(cert, ext.get(), -1) == 1, "an extension");
}

X509Cert certificate_for(EVP_PKEY* key, const config::PublicUrl& url) {
  X509Cert cert(X509_new());
  must(cert && X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_new");
  set_random_serial(cert.get());
  must(X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0) &&
           X509_time_adj_ex(X509_getm_notAfter(cert.get()), kValidDays, 0, nullptr),
       "the validity");
  must(X509_set_pubkey(cert.get(), key) == 1, "the public key");
  set_names(cert.get(), url);
  add_extension(cert.get(), NID_subject_alt_name, (url.ip ? "IP:" : "DNS:") + url.host);
  add_extension(cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_extension(cert.get(), NID_ext_key_usage, "serverAuth");
  must(X509_sign(cert.get(), key, EVP_sha256()) > 0, "signing");
  return cert;
}

std::string pem_of(const std::function<int(BIO*)>& write) {
  // Cleared when freed (one holds the private key).
  Bio bio(BIO_new(BIO_s_secmem()));
  must(bio && write(bio.get()) == 1, "writing PEM");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace

PemPair make_self_signed(const config::PublicUrl& url) {
  EvpPkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  must(key != nullptr, "EVP_PKEY_Q_keygen");
  auto cert = certificate_for(key.get(), url);
  return {pem_of([&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); }), pem_of([&](BIO* b) {
            return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
          })};
}

}  // namespace xcg::gateway
