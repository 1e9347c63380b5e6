// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/ca/ca.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "tls/verify.h"
#include "tls/x509.h"

namespace ferry::ca {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

std::string tempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "ferry-ca-XXXXXX").string();
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  return tmpl;
}

std::string csrFor(const tls::SpiffeId& id) {
  auto key = tls::generateP256Key();
  REQUIRE(key.ok());
  auto csr = tls::createCsr(key->get(), id);
  REQUIRE(csr.ok());
  auto pem = tls::csrToPem(csr->get());
  REQUIRE(pem.ok());
  return *pem;
}

// Verifies `leaf_pem` against `bundle_pem` at `now`; returns the status.
absl::Status verifyAgainst(const std::string& bundle_pem, const std::string& leaf_pem,
                           absl::Time now) {
  auto bundle = tls::TrustBundle::fromPem(bundle_pem);
  REQUIRE(bundle.ok());
  auto leaf = tls::certFromPem(leaf_pem);
  REQUIRE(leaf.ok());
  return verifySvid(**bundle, leaf->get(), nullptr, "cluster.local", now).status();
}

const tls::SpiffeId kWeb{"cluster.local", "default", "web"};

TEST_CASE("a generated root is kept in the state dir with private modes and reloaded", "[ca]") {
  std::string dir = tempDir() + "/state";
  auto first = CertificateAuthority::loadOrCreate(dir, CaConfig{}, kT0);
  REQUIRE(first.ok());
  struct stat st {};
  REQUIRE(::stat(dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  REQUIRE(::stat((dir + "/root-key.pem").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  auto again = CertificateAuthority::loadOrCreate(dir, CaConfig{}, kT0 + absl::Hours(1));
  REQUIRE(again.ok());
  CHECK((*again)->activeRootPem() == (*first)->activeRootPem());

  auto leaf = (*again)->sign(csrFor(kWeb), kWeb, kT0 + absl::Hours(1));
  REQUIRE(leaf.ok());
  CHECK(verifyAgainst((*first)->trustBundlePem(kT0), *leaf, kT0 + absl::Hours(2)).ok());
  auto info = tls::inspectCert(tls::certFromPem(*leaf)->get());
  REQUIRE(info.ok());
  CHECK(info->not_after - (kT0 + absl::Hours(1)) == absl::Hours(24));  // default lifetime
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}

TEST_CASE("a root supplied as PEM is checked before use", "[ca]") {
  auto key = tls::generateP256Key();
  auto other = tls::generateP256Key();
  REQUIRE(key.ok());
  REQUIRE(other.ok());
  auto cert = tls::createRootCert(key->get(), "operator root", absl::Hours(24 * 365), kT0);
  REQUIRE(cert.ok());
  std::string cert_pem = *tls::certToPem(cert->get());

  auto ok = CertificateAuthority::fromPem(cert_pem, *tls::keyToPem(key->get()), CaConfig{}, kT0);
  REQUIRE(ok.ok());
  CHECK((*ok)->trustBundlePem(kT0) == cert_pem);

  auto mismatched =
      CertificateAuthority::fromPem(cert_pem, *tls::keyToPem(other->get()), CaConfig{}, kT0);
  CHECK_THAT(std::string(mismatched.status().message()), Catch::Contains("does not match"));

  auto expired = CertificateAuthority::fromPem(cert_pem, *tls::keyToPem(key->get()), CaConfig{},
                                               kT0 + absl::Hours(24 * 400));
  CHECK_THAT(std::string(expired.status().message()), Catch::Contains("expired"));

  auto garbage = CertificateAuthority::fromPem("not pem", "nope", CaConfig{}, kT0);
  CHECK(garbage.status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("the CA refuses a CSR asking for another identity than the one granted", "[ca]") {
  auto ca = CertificateAuthority::fromPem(
      *tls::certToPem(
          tls::createRootCert(tls::generateP256Key()->get(), "x", absl::Hours(100), kT0)->get()),
      "", CaConfig{}, kT0);
  CHECK_FALSE(ca.ok());  // empty key

  auto made = CertificateAuthority::loadOrCreate(tempDir(), CaConfig{}, kT0);
  REQUIRE(made.ok());
  tls::SpiffeId admin{"cluster.local", "default", "admin"};
  CHECK_FALSE((*made)->sign(csrFor(admin), kWeb, kT0).ok());
  tls::SpiffeId foreign{"other.domain", "default", "web"};
  CHECK((*made)->sign(csrFor(foreign), foreign, kT0).status().code() ==
        absl::StatusCode::kPermissionDenied);
}

TEST_CASE("root rotation: both roots trusted during the overlap, the new root signs", "[ca]") {
  CaConfig config;
  config.rotation_overlap = absl::Hours(30);
  std::string dir = tempDir();
  auto ca = CertificateAuthority::loadOrCreate(dir, config, kT0);
  REQUIRE(ca.ok());
  const std::string old_root = (*ca)->activeRootPem();
  auto old_leaf = (*ca)->sign(csrFor(kWeb), kWeb, kT0);
  REQUIRE(old_leaf.ok());

  const absl::Time t_rotate = kT0 + absl::Hours(2);
  REQUIRE((*ca)->rotate(t_rotate).ok());
  const std::string new_root = (*ca)->activeRootPem();
  CHECK(new_root != old_root);

  // During the overlap the bundle holds both; a certificate from the old root still verifies.
  const absl::Time during = t_rotate + absl::Hours(10);
  std::string bundle = (*ca)->trustBundlePem(during);
  CHECK(bundle == new_root + old_root);
  CHECK(verifyAgainst(bundle, *old_leaf, during).ok());

  // The new root signs: the new leaf chains to the new root and not to the old one.
  auto new_leaf = (*ca)->sign(csrFor(kWeb), kWeb, during);
  REQUIRE(new_leaf.ok());
  CHECK(verifyAgainst(new_root, *new_leaf, during).ok());
  CHECK_FALSE(verifyAgainst(old_root, *new_leaf, during).ok());

  // A restart during the overlap keeps the retiring root.
  auto reloaded = CertificateAuthority::loadOrCreate(dir, config, during);
  REQUIRE(reloaded.ok());
  CHECK((*reloaded)->trustBundlePem(during) == bundle);

  // After the overlap only the new root is trusted.
  const absl::Time after = t_rotate + absl::Hours(31);
  CHECK((*ca)->trustBundlePem(after) == new_root);
  CHECK((*reloaded)->trustBundlePem(after) == new_root);
  std::filesystem::remove_all(dir);
}

TEST_CASE("CA config is validated once with clear reasons", "[ca]") {
  CaConfig short_overlap;
  short_overlap.rotation_overlap = absl::Hours(1);
  CHECK_THAT(std::string(short_overlap.validate().message()), Catch::Contains("overlap"));
  CaConfig bad_td;
  bad_td.trust_domain = "Bad.Domain";
  CHECK_FALSE(bad_td.validate().ok());
  CHECK(CaConfig{}.validate().ok());
}

TEST_CASE("node identities cannot collide with workload identities", "[ca]") {
  tls::SpiffeId id = nodeIdentity("cluster.local", "node1");
  CHECK(id.uri() == "spiffe://cluster.local/ns/ferry.node/sa/node1");
  CHECK(*nodeFromIdentity(id) == "node1");
  CHECK(nodeFromIdentity(kWeb).status().code() == absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace ferry::ca
