// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// RAII owners for the OpenSSL 3 objects Ferry uses, plus error-queue draining. Every OpenSSL
// pointer that crosses a function boundary in Ferry is one of these, so no path leaks.

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace ferry::tls {

template <typename T, void (*kFree)(T*)>
struct OsslDeleter {
  void operator()(T* p) const { kFree(p); }
};

using UniquePkey = std::unique_ptr<EVP_PKEY, OsslDeleter<EVP_PKEY, EVP_PKEY_free>>;
using UniquePkeyCtx = std::unique_ptr<EVP_PKEY_CTX, OsslDeleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using UniqueX509 = std::unique_ptr<X509, OsslDeleter<X509, X509_free>>;
using UniqueX509Req = std::unique_ptr<X509_REQ, OsslDeleter<X509_REQ, X509_REQ_free>>;
using UniqueX509Store = std::unique_ptr<X509_STORE, OsslDeleter<X509_STORE, X509_STORE_free>>;
using UniqueX509StoreCtx =
    std::unique_ptr<X509_STORE_CTX, OsslDeleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using UniqueX509Ext =
    std::unique_ptr<X509_EXTENSION, OsslDeleter<X509_EXTENSION, X509_EXTENSION_free>>;
using UniqueBio = std::unique_ptr<BIO, OsslDeleter<BIO, BIO_free_all>>;
using UniqueBignum = std::unique_ptr<BIGNUM, OsslDeleter<BIGNUM, BN_free>>;
using UniqueSslCtx = std::unique_ptr<SSL_CTX, OsslDeleter<SSL_CTX, SSL_CTX_free>>;
using UniqueSsl = std::unique_ptr<SSL, OsslDeleter<SSL, SSL_free>>;

inline void freeGeneralNames(GENERAL_NAMES* names) {
  GENERAL_NAMES_free(names);
}
using UniqueGeneralNames =
    std::unique_ptr<GENERAL_NAMES, OsslDeleter<GENERAL_NAMES, freeGeneralNames>>;

inline void freeX509Stack(STACK_OF(X509) * s) {
  sk_X509_pop_free(s, X509_free);
}
using UniqueX509Stack = std::unique_ptr<STACK_OF(X509), OsslDeleter<STACK_OF(X509), freeX509Stack>>;

inline void freeExtStack(STACK_OF(X509_EXTENSION) * s) {
  sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
}
using UniqueExtStack =
    std::unique_ptr<STACK_OF(X509_EXTENSION), OsslDeleter<STACK_OF(X509_EXTENSION), freeExtStack>>;

// Drains OpenSSL's thread-local error queue into one readable string ("" when empty). Always
// call it after a failed OpenSSL call so a stale error never leaks into a later, unrelated one.
std::string drainOpensslErrors();

// An error status carrying `what` plus whatever OpenSSL queued.
absl::Status opensslError(absl::string_view what);

}  // namespace ferry::tls
