// RAII owners for OpenSSL's handles. Header-only: whoever includes it links libcrypto.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace xcg {

// Deleter for an OpenSSL handle released by `Free` (each of which accepts null).
template <auto Free>
struct OsslDeleter {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};

using EvpPkey = std::unique_ptr<EVP_PKEY, OsslDeleter<EVP_PKEY_free>>;
using X509Cert = std::unique_ptr<X509, OsslDeleter<X509_free>>;
using X509Ext = std::unique_ptr<X509_EXTENSION, OsslDeleter<X509_EXTENSION_free>>;
using Bio = std::unique_ptr<BIO, OsslDeleter<BIO_free>>;
using BigNum = std::unique_ptr<BIGNUM, OsslDeleter<BN_free>>;

}  // namespace xcg
