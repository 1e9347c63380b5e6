// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "tls/x509.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace ferry::tls {
namespace {

// Accept certificates a minute "from the future" so small clock skew between nodes never
// breaks a freshly issued SVID.
constexpr absl::Duration kBackdate = absl::Minutes(1);

absl::Time fromAsn1Time(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return absl::InfinitePast();
  }
  return absl::FromTM(tm, absl::UTCTimeZone());
}

absl::Status setTime(ASN1_TIME* field, absl::Time t) {
  if (ASN1_TIME_set(field, absl::ToTimeT(t)) == nullptr) {
    return opensslError("cannot set certificate time");
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueGeneralNames> uriSan(const std::string& uri) {
  UniqueGeneralNames names(sk_GENERAL_NAME_new_null());
  GENERAL_NAME* name = GENERAL_NAME_new();
  ASN1_IA5STRING* value = ASN1_IA5STRING_new();
  if (!names || name == nullptr || value == nullptr ||
      ASN1_STRING_set(value, uri.data(), static_cast<int>(uri.size())) != 1) {
    GENERAL_NAME_free(name);
    ASN1_IA5STRING_free(value);
    return opensslError("cannot build URI SAN");
  }
  GENERAL_NAME_set0_value(name, GEN_URI, value);
  if (sk_GENERAL_NAME_push(names.get(), name) <= 0) {
    GENERAL_NAME_free(name);
    return opensslError("cannot build URI SAN");
  }
  return names;
}

absl::Status addExt(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  UniqueX509Ext ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return opensslError(absl::StrCat("cannot add extension ", OBJ_nid2sn(nid), "=", value));
  }
  return absl::OkStatus();
}

absl::Status setRandomSerial(X509* cert) {
  UniqueBignum bn(BN_new());
  // 127 random bits: positive, unpredictable (RFC 5280 asks for at least 64 bits of entropy).
  if (!bn || BN_rand(bn.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    return opensslError("cannot generate serial number");
  }
  return absl::OkStatus();
}

bool isP256(EVP_PKEY* key) {
  if (!EVP_PKEY_is_a(key, "EC")) {
    return false;
  }
  char group[64] = {};
  size_t len = 0;
  if (EVP_PKEY_get_group_name(key, group, sizeof(group), &len) != 1) {
    return false;
  }
  return absl::string_view(group, len) == "prime256v1" || absl::string_view(group, len) == "P-256";
}

std::vector<std::string> uriNames(const GENERAL_NAMES* names) {
  std::vector<std::string> out;
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_URI) {
      const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                       static_cast<size_t>(ASN1_STRING_length(uri)));
    }
  }
  return out;
}

template <typename T, auto kWrite>
absl::StatusOr<std::string> toPem(T* obj, absl::string_view what) {
  UniqueBio bio(BIO_new(BIO_s_mem()));
  if (!bio || kWrite(bio.get(), obj) != 1) {
    return opensslError(absl::StrCat("cannot write ", what, " as PEM"));
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

int writeKey(BIO* bio, EVP_PKEY* key) {
  return PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
}

UniqueBio memBio(absl::string_view pem) {
  return UniqueBio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

}  // namespace

absl::StatusOr<UniquePkey> generateP256Key() {
  UniquePkey key(EVP_EC_gen("P-256"));
  if (!key) {
    return opensslError("cannot generate ECDSA P-256 key");
  }
  return key;
}

absl::StatusOr<UniqueX509Req> createCsr(EVP_PKEY* key, const SpiffeId& id) {
  UniqueX509Req req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1 || X509_REQ_set_pubkey(req.get(), key) != 1) {
    return opensslError("cannot create CSR");
  }
  absl::StatusOr<UniqueGeneralNames> san = uriSan(id.uri());
  if (!san.ok()) {
    return san.status();
  }
  UniqueExtStack exts(sk_X509_EXTENSION_new_null());
  X509_EXTENSION* ext = X509V3_EXT_i2d(NID_subject_alt_name, 1, san->get());
  if (!exts || ext == nullptr || sk_X509_EXTENSION_push(exts.get(), ext) <= 0) {
    X509_EXTENSION_free(ext);
    return opensslError("cannot add SAN to CSR");
  }
  if (X509_REQ_add_extensions(req.get(), exts.get()) != 1 ||
      X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) {
    return opensslError("cannot sign CSR");
  }
  return req;
}

absl::StatusOr<UniqueX509> createRootCert(EVP_PKEY* key, absl::string_view common_name,
                                          absl::Duration lifetime, absl::Time now) {
  if (lifetime <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("root certificate lifetime must be positive");
  }
  UniqueX509 cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return opensslError("cannot create root certificate");
  }
  if (absl::Status s = setRandomSerial(cert.get()); !s.ok()) {
    return s;
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  std::string cn(common_name);
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>("ferry"), -1, -1, 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(cert.get(), name) != 1 || X509_set_pubkey(cert.get(), key) != 1) {
    return opensslError("cannot name root certificate");
  }
  if (absl::Status s = setTime(X509_getm_notBefore(cert.get()), now - kBackdate); !s.ok()) {
    return s;
  }
  if (absl::Status s = setTime(X509_getm_notAfter(cert.get()), now + lifetime); !s.ok()) {
    return s;
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                            std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"},
                            std::pair{NID_authority_key_identifier, "keyid:always"}}) {
    if (absl::Status s = addExt(cert.get(), &ctx, nid, value); !s.ok()) {
      return s;
    }
  }
  if (X509_sign(cert.get(), key, EVP_sha256()) <= 0) {
    return opensslError("cannot self-sign root certificate");
  }
  return cert;
}

absl::StatusOr<UniqueX509> signCsr(X509* ca_cert, EVP_PKEY* ca_key, X509_REQ* csr,
                                   const SpiffeId& id, absl::Duration lifetime, absl::Time now) {
  if (lifetime <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("certificate lifetime must be positive");
  }
  if (X509_check_private_key(ca_cert, ca_key) != 1) {
    drainOpensslErrors();
    return absl::InvalidArgumentError("CA key does not match the CA certificate");
  }
  EVP_PKEY* pub = X509_REQ_get0_pubkey(csr);
  if (pub == nullptr || X509_REQ_verify(csr, pub) != 1) {
    drainOpensslErrors();
    return absl::InvalidArgumentError("CSR signature does not verify with its own public key");
  }
  if (!isP256(pub)) {
    return absl::InvalidArgumentError("CSR key is not ECDSA P-256");
  }
  const std::string uri = id.uri();
  UniqueExtStack req_exts(X509_REQ_get_extensions(csr));
  if (req_exts) {
    UniqueGeneralNames asked(static_cast<GENERAL_NAMES*>(
        X509V3_get_d2i(req_exts.get(), NID_subject_alt_name, nullptr, nullptr)));
    if (asked && sk_GENERAL_NAME_num(asked.get()) > 0) {
      std::vector<std::string> uris = uriNames(asked.get());
      if (uris.size() != static_cast<size_t>(sk_GENERAL_NAME_num(asked.get())) ||
          uris.size() != 1 || uris[0] != uri) {
        return absl::PermissionDeniedError(absl::StrCat(
            "CSR asks for SANs other than ", uri, " (the CA signs only the caller's identity)"));
      }
    }
  }
  const absl::Time ca_not_after = fromAsn1Time(X509_get0_notAfter(ca_cert));
  if (ca_not_after <= now) {
    return absl::FailedPreconditionError("CA certificate has expired");
  }
  const absl::Time not_after = std::min(now + lifetime, ca_not_after);

  UniqueX509 cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert)) != 1 ||
      X509_set_pubkey(cert.get(), pub) != 1) {
    return opensslError("cannot create certificate");
  }
  if (absl::Status s = setRandomSerial(cert.get()); !s.ok()) {
    return s;
  }
  if (absl::Status s = setTime(X509_getm_notBefore(cert.get()), now - kBackdate); !s.ok()) {
    return s;
  }
  if (absl::Status s = setTime(X509_getm_notAfter(cert.get()), not_after); !s.ok()) {
    return s;
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca_cert, cert.get(), nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:FALSE"},
                            std::pair{NID_key_usage, "critical,digitalSignature,keyAgreement"},
                            std::pair{NID_ext_key_usage, "serverAuth,clientAuth"},
                            std::pair{NID_subject_key_identifier, "hash"},
                            std::pair{NID_authority_key_identifier, "keyid"}}) {
    if (absl::Status s = addExt(cert.get(), &ctx, nid, value); !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<UniqueGeneralNames> san = uriSan(uri);
  if (!san.ok()) {
    return san.status();
  }
  // Critical because the subject is empty (RFC 5280 4.2.1.6).
  if (X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, san->get(), 1, X509V3_ADD_DEFAULT) != 1) {
    return opensslError("cannot add SAN to certificate");
  }
  if (X509_sign(cert.get(), ca_key, EVP_sha256()) <= 0) {
    return opensslError("cannot sign certificate");
  }
  return cert;
}

absl::StatusOr<SpiffeId> CertInfo::spiffeId() const {
  if (uri_sans.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate has ", uri_sans.size(), " URI SANs; an SVID has exactly one"));
  }
  return SpiffeId::parse(uri_sans[0]);
}

absl::StatusOr<CertInfo> inspectCert(X509* cert) {
  if (cert == nullptr) {
    return absl::InvalidArgumentError("no certificate");
  }
  CertInfo info;
  UniqueGeneralNames names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  info.uri_sans = uriNames(names.get());
  info.not_before = fromAsn1Time(X509_get0_notBefore(cert));
  info.not_after = fromAsn1Time(X509_get0_notAfter(cert));
  info.is_ca = (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
  UniqueBignum serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!serial) {
    return opensslError("cannot read serial number");
  }
  char* hex = BN_bn2hex(serial.get());
  info.serial_hex = hex != nullptr ? hex : "";
  OPENSSL_free(hex);
  UniqueBio bio(BIO_new(BIO_s_mem()));
  if (bio && X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    info.subject.assign(data, static_cast<size_t>(len));
  }
  return info;
}

absl::StatusOr<std::string> certToPem(X509* cert) {
  return toPem<X509, PEM_write_bio_X509>(cert, "certificate");
}

absl::StatusOr<std::string> certChainToPem(const std::vector<UniqueX509>& chain) {
  std::string out;
  for (const UniqueX509& cert : chain) {
    absl::StatusOr<std::string> pem = certToPem(cert.get());
    if (!pem.ok()) {
      return pem.status();
    }
    out += *pem;
  }
  return out;
}

absl::StatusOr<std::string> keyToPem(EVP_PKEY* key) {
  return toPem<EVP_PKEY, writeKey>(key, "private key");
}

absl::StatusOr<std::string> csrToPem(X509_REQ* csr) {
  return toPem<X509_REQ, PEM_write_bio_X509_REQ>(csr, "CSR");
}

absl::StatusOr<UniqueX509> certFromPem(absl::string_view pem) {
  UniqueBio bio = memBio(pem);
  UniqueX509 cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    drainOpensslErrors();
    return absl::InvalidArgumentError("no PEM certificate found (expected BEGIN CERTIFICATE)");
  }
  return cert;
}

absl::StatusOr<std::vector<UniqueX509>> certChainFromPem(absl::string_view pem) {
  UniqueBio bio = memBio(pem);
  std::vector<UniqueX509> chain;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    chain.emplace_back(cert);
  }
  // The loop ends on "no start line" after the last block; anything else is a broken block.
  unsigned long err = ERR_peek_last_error();
  bool clean_end = ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
  std::string detail = drainOpensslErrors();
  if (!clean_end && err != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed PEM certificate ", chain.size() + 1, ": ", detail));
  }
  if (chain.empty()) {
    return absl::InvalidArgumentError("no PEM certificate found (expected BEGIN CERTIFICATE)");
  }
  return chain;
}

absl::StatusOr<UniquePkey> keyFromPem(absl::string_view pem) {
  UniqueBio bio = memBio(pem);
  UniquePkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    drainOpensslErrors();
    return absl::InvalidArgumentError("no PEM private key found (expected BEGIN PRIVATE KEY)");
  }
  return key;
}

absl::StatusOr<UniqueX509Req> csrFromPem(absl::string_view pem) {
  UniqueBio bio = memBio(pem);
  UniqueX509Req csr(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!csr) {
    drainOpensslErrors();
    return absl::InvalidArgumentError(
        "no PEM certificate request found (expected BEGIN CERTIFICATE REQUEST)");
  }
  return csr;
}

absl::StatusOr<std::string> readPemFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

absl::Status writePemFile(const std::string& path, absl::string_view pem) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < pem.size()) {
    ssize_t n = ::write(fd, pem.data() + done, pem.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot replace ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

UniqueX509 shareCert(X509* cert) {
  X509_up_ref(cert);
  return UniqueX509(cert);
}

}  // namespace ferry::tls
