// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "tls/x509.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>

#include "fakes/ca/fake_ca.h"

namespace ferry::tls {
namespace {

const SpiffeId kId{"cluster.local", "shop", "cart"};

TEST_CASE("P-256 keys, CSRs and signed leaves carry the SPIFFE ID and validity") {
  fakes::FakeCa ca;
  absl::StatusOr<UniquePkey> key = generateP256Key();
  REQUIRE(key.ok());
  absl::StatusOr<UniqueX509Req> csr = createCsr(key->get(), kId);
  REQUIRE(csr.ok());

  // Through PEM and back, as it travels from agent to controller.
  absl::StatusOr<std::string> csr_pem = csrToPem(csr->get());
  REQUIRE(csr_pem.ok());
  CHECK_THAT(*csr_pem, Catch::StartsWith("-----BEGIN CERTIFICATE REQUEST-----"));
  absl::StatusOr<UniqueX509Req> parsed_csr = csrFromPem(*csr_pem);
  REQUIRE(parsed_csr.ok());

  const absl::Time now = absl::FromUnixSeconds(1800000000);
  absl::StatusOr<UniqueX509> leaf =
      signCsr(ca.root(), ca.rootKey(), parsed_csr->get(), kId, absl::Hours(24), now);
  REQUIRE(leaf.ok());
  absl::StatusOr<CertInfo> info = inspectCert(leaf->get());
  REQUIRE(info.ok());
  CHECK(info->uri_sans == std::vector<std::string>{"spiffe://cluster.local/ns/shop/sa/cart"});
  CHECK(info->not_before == now - absl::Minutes(1));
  CHECK(info->not_after == now + absl::Hours(24));
  CHECK_FALSE(info->is_ca);
  CHECK(info->serial_hex.size() >= 16);
  absl::StatusOr<SpiffeId> id = info->spiffeId();
  REQUIRE(id.ok());
  CHECK(*id == kId);
  // The leaf's key is the CSR's key.
  CHECK(X509_check_private_key(leaf->get(), key->get()) == 1);

  absl::StatusOr<CertInfo> root_info = inspectCert(ca.root());
  REQUIRE(root_info.ok());
  CHECK(root_info->is_ca);
  CHECK(root_info->uri_sans.empty());
  CHECK_THAT(root_info->subject, Catch::Contains("fake root cluster.local"));
}

TEST_CASE("serial numbers differ between certificates") {
  fakes::FakeCa ca;
  fakes::IssuedCert a = ca.issue("ns", "sa");
  fakes::IssuedCert b = ca.issue("ns", "sa");
  CHECK(inspectCert(a.chain[0].get())->serial_hex != inspectCert(b.chain[0].get())->serial_hex);
}

TEST_CASE("signCsr refuses a CSR asking for another identity") {
  fakes::FakeCa ca;
  UniquePkey key = std::move(*generateP256Key());
  UniqueX509Req csr =
      std::move(*createCsr(key.get(), SpiffeId{"cluster.local", "kube-system", "admin"}));
  absl::StatusOr<UniqueX509> leaf =
      signCsr(ca.root(), ca.rootKey(), csr.get(), kId, absl::Hours(1), absl::Now());
  REQUIRE_FALSE(leaf.ok());
  CHECK(leaf.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK_THAT(std::string(leaf.status().message()), Catch::Contains("SANs other than"));
}

TEST_CASE("signCsr refuses non-P-256 keys, bad lifetimes and a mismatched CA key") {
  fakes::FakeCa ca;
  fakes::FakeCa other;
  UniquePkey p256 = std::move(*generateP256Key());
  UniqueX509Req good = std::move(*createCsr(p256.get(), kId));

  SECTION("RSA key") {
    UniquePkey rsa(EVP_RSA_gen(2048));
    REQUIRE(rsa);
    UniqueX509Req csr = std::move(*createCsr(rsa.get(), kId));
    auto leaf = signCsr(ca.root(), ca.rootKey(), csr.get(), kId, absl::Hours(1), absl::Now());
    REQUIRE_FALSE(leaf.ok());
    CHECK_THAT(std::string(leaf.status().message()), Catch::Contains("not ECDSA P-256"));
  }
  SECTION("zero lifetime") {
    auto leaf =
        signCsr(ca.root(), ca.rootKey(), good.get(), kId, absl::ZeroDuration(), absl::Now());
    REQUIRE_FALSE(leaf.ok());
    CHECK_THAT(std::string(leaf.status().message()), Catch::Contains("lifetime must be positive"));
  }
  SECTION("CA key of another CA") {
    auto leaf = signCsr(ca.root(), other.rootKey(), good.get(), kId, absl::Hours(1), absl::Now());
    REQUIRE_FALSE(leaf.ok());
    CHECK_THAT(std::string(leaf.status().message()), Catch::Contains("does not match"));
  }
}

TEST_CASE("a leaf never outlives its CA") {
  const absl::Time now = absl::FromUnixSeconds(1800000000);
  fakes::FakeCa ca("cluster.local", now, absl::Hours(2));
  UniquePkey key = std::move(*generateP256Key());
  UniqueX509Req csr = std::move(*createCsr(key.get(), kId));
  auto leaf = signCsr(ca.root(), ca.rootKey(), csr.get(), kId, absl::Hours(24), now);
  REQUIRE(leaf.ok());
  CHECK(inspectCert(leaf->get())->not_after == now + absl::Hours(2));
  auto late =
      signCsr(ca.root(), ca.rootKey(), csr.get(), kId, absl::Hours(24), now + absl::Hours(3));
  REQUIRE_FALSE(late.ok());
  CHECK_THAT(std::string(late.status().message()), Catch::Contains("CA certificate has expired"));
}

TEST_CASE("PEM round trips through files written 0600") {
  fakes::FakeCa ca;
  fakes::IssuedCert leaf = ca.issue("ns", "sa");
  char dir_template[] = "/tmp/ferry-tls-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::string dir = dir_template;
  const std::string key_path = dir + "/key.pem";
  const std::string chain_path = dir + "/chain.pem";

  REQUIRE(writePemFile(key_path, leaf.key_pem).ok());
  REQUIRE(writePemFile(chain_path, leaf.cert_pem + ca.rootPem()).ok());
  struct stat st {};
  REQUIRE(stat(key_path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  absl::StatusOr<std::string> key_pem = readPemFile(key_path);
  REQUIRE(key_pem.ok());
  absl::StatusOr<UniquePkey> key = keyFromPem(*key_pem);
  REQUIRE(key.ok());
  absl::StatusOr<std::vector<UniqueX509>> chain = certChainFromPem(*readPemFile(chain_path));
  REQUIRE(chain.ok());
  REQUIRE(chain->size() == 2);
  CHECK(X509_check_private_key((*chain)[0].get(), key->get()) == 1);
  CHECK(X509_cmp((*chain)[1].get(), ca.root()) == 0);

  unlink(key_path.c_str());
  unlink(chain_path.c_str());
  rmdir(dir.c_str());
  CHECK(readPemFile(key_path).status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("garbage PEM input is refused with a clear reason") {
  CHECK_THAT(std::string(certFromPem("hello").status().message()),
             Catch::Contains("expected BEGIN CERTIFICATE"));
  CHECK_THAT(std::string(certChainFromPem("").status().message()),
             Catch::Contains("no PEM certificate"));
  CHECK_THAT(
      std::string(keyFromPem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                      .status()
                      .message()),
      Catch::Contains("no PEM private key"));
  CHECK_THAT(std::string(certChainFromPem("-----BEGIN CERTIFICATE-----\n!!!\n-----END "
                                          "CERTIFICATE-----\n")
                             .status()
                             .message()),
             Catch::Contains("malformed PEM certificate 1"));
  CHECK_THAT(std::string(csrFromPem("x").status().message()),
             Catch::Contains("BEGIN CERTIFICATE REQUEST"));
}

}  // namespace
}  // namespace ferry::tls
