// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "fakes/ca/fake_ca.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace ferry::fakes {
namespace {

template <typename T>
T orDie(absl::StatusOr<T> v, absl::string_view what) {
  if (!v.ok()) {
    std::fprintf(stderr, "FakeCa: %.*s: %s\n", static_cast<int>(what.size()), what.data(),
                 std::string(v.status().message()).c_str());
    std::abort();
  }
  return std::move(*v);
}

void check(bool ok, absl::string_view what) {
  if (!ok) {
    std::fprintf(stderr, "FakeCa: %.*s failed: %s\n", static_cast<int>(what.size()), what.data(),
                 tls::drainOpensslErrors().c_str());
    std::abort();
  }
}

IssuedCert finish(tls::SpiffeId id, tls::UniquePkey key, tls::UniqueX509 leaf) {
  IssuedCert out;
  out.id = std::move(id);
  out.cert_pem = orDie(tls::certToPem(leaf.get()), "leaf PEM");
  out.key_pem = orDie(tls::keyToPem(key.get()), "key PEM");
  out.key = std::move(key);
  out.chain.push_back(std::move(leaf));
  return out;
}

}  // namespace

FakeCa::FakeCa(std::string trust_domain, absl::Time now, absl::Duration lifetime)
    : trust_domain_(std::move(trust_domain)) {
  root_key_ = orDie(tls::generateP256Key(), "root key");
  root_ = orDie(tls::createRootCert(root_key_.get(), absl::StrCat("fake root ", trust_domain_),
                                    lifetime, now),
                "root certificate");
}

std::string FakeCa::rootPem() const {
  return orDie(tls::certToPem(root_.get()), "root PEM");
}

std::shared_ptr<const tls::TrustBundle> FakeCa::bundle() const {
  std::vector<tls::UniqueX509> roots;
  roots.push_back(tls::shareCert(root_.get()));
  return orDie(tls::TrustBundle::fromCerts(std::move(roots)), "trust bundle");
}

IssuedCert FakeCa::issue(absl::string_view ns, absl::string_view sa, absl::Duration lifetime,
                         absl::Time now) const {
  return issue(tls::SpiffeId{trust_domain_, std::string(ns), std::string(sa)}, lifetime, now);
}

IssuedCert FakeCa::issue(const tls::SpiffeId& id, absl::Duration lifetime, absl::Time now) const {
  tls::UniquePkey key = orDie(tls::generateP256Key(), "leaf key");
  tls::UniqueX509Req csr = orDie(tls::createCsr(key.get(), id), "CSR");
  tls::UniqueX509 leaf =
      orDie(tls::signCsr(root_.get(), root_key_.get(), csr.get(), id, lifetime, now), "signCsr");
  return finish(id, std::move(key), std::move(leaf));
}

IssuedCert FakeCa::issueRaw(const std::vector<std::string>& uri_sans, bool is_ca,
                            absl::Duration lifetime, absl::Time now) const {
  tls::UniquePkey key = orDie(tls::generateP256Key(), "leaf key");
  tls::UniqueX509 cert(X509_new());
  check(cert && X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_new");
  check(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 4242) == 1, "serial");
  X509_NAME* name = X509_get_subject_name(cert.get());
  check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>("raw leaf"), -1, -1,
                                   0) == 1,
        "subject");
  check(X509_set_issuer_name(cert.get(), X509_get_subject_name(root_.get())) == 1, "issuer");
  check(X509_set_pubkey(cert.get(), key.get()) == 1, "pubkey");
  check(ASN1_TIME_set(X509_getm_notBefore(cert.get()), absl::ToTimeT(now - absl::Minutes(1))) !=
            nullptr,
        "notBefore");
  check(ASN1_TIME_set(X509_getm_notAfter(cert.get()), absl::ToTimeT(now + lifetime)) != nullptr,
        "notAfter");
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, root_.get(), cert.get(), nullptr, nullptr, 0);
  std::string san;
  for (const std::string& uri : uri_sans) {
    absl::StrAppend(&san, san.empty() ? "" : ",", "URI:", uri);
  }
  std::vector<std::pair<int, std::string>> exts = {
      {NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE"},
      {NID_authority_key_identifier, "keyid"}};
  if (!san.empty()) {
    exts.emplace_back(NID_subject_alt_name, san);
  }
  for (const auto& [nid, value] : exts) {
    tls::UniqueX509Ext ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
    check(ext && X509_add_ext(cert.get(), ext.get(), -1) == 1, value);
  }
  check(X509_sign(cert.get(), root_key_.get(), EVP_sha256()) > 0, "sign");
  tls::SpiffeId id;
  if (uri_sans.size() == 1) {
    if (auto parsed = tls::SpiffeId::parse(uri_sans[0]); parsed.ok()) {
      id = *parsed;
    }
  }
  return finish(std::move(id), std::move(key), std::move(cert));
}

}  // namespace ferry::fakes
