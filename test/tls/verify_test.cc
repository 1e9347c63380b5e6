// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "tls/verify.h"

#include <catch2/catch.hpp>

#include "fakes/ca/fake_ca.h"

namespace ferry::tls {
namespace {

std::string verifyError(const TrustBundle& bundle, const fakes::IssuedCert& cert,
                        absl::string_view td = "cluster.local", absl::Time now = absl::Now()) {
  absl::StatusOr<SpiffeId> id = verifySvid(bundle, cert.chain[0].get(), nullptr, td, now);
  if (id.ok()) {
    return "accepted";
  }
  CHECK(id.status().code() == absl::StatusCode::kPermissionDenied);
  return std::string(id.status().message());
}

TEST_CASE("a leaf from the trusted CA verifies and yields its SPIFFE ID") {
  fakes::FakeCa ca;
  fakes::IssuedCert leaf = ca.issue("shop", "cart");
  absl::StatusOr<SpiffeId> id =
      verifySvid(*ca.bundle(), leaf.chain[0].get(), nullptr, "cluster.local", absl::Now());
  REQUIRE(id.ok());
  CHECK(id->uri() == "spiffe://cluster.local/ns/shop/sa/cart");
}

TEST_CASE("a bundle with two roots accepts leaves of both (CA rotation)") {
  fakes::FakeCa old_ca;
  fakes::FakeCa new_ca;
  auto bundle = TrustBundle::fromPem(old_ca.rootPem() + new_ca.rootPem());
  REQUIRE(bundle.ok());
  CHECK((*bundle)->roots().size() == 2);
  CHECK(verifyError(**bundle, old_ca.issue("a", "b")) == "accepted");
  CHECK(verifyError(**bundle, new_ca.issue("a", "b")) == "accepted");
  fakes::FakeCa stranger;
  CHECK(verifyError(**bundle, stranger.issue("a", "b")) != "accepted");
}

TEST_CASE("peer certificates breaking a rule are refused, naming the reason") {
  fakes::FakeCa ca;
  fakes::FakeCa other_ca;
  fakes::FakeCa other_domain_ca("other.domain");
  const absl::Time now = absl::Now();
  auto bundle = ca.bundle();

  CHECK_THAT(verifyError(*bundle, other_ca.issue("a", "b")),
             Catch::Contains("not signed by a trusted root"));
  CHECK_THAT(verifyError(*bundle, ca.issue("a", "b", absl::Hours(1), now - absl::Hours(2))),
             Catch::Contains("expired at"));
  CHECK_THAT(verifyError(*bundle, ca.issue("a", "b", absl::Hours(1), now + absl::Hours(2))),
             Catch::Contains("not valid before"));
  // Same root key material trusted, but the SAN names another trust domain.
  CHECK_THAT(verifyError(*bundle, ca.issue(SpiffeId{"other.domain", "a", "b"})),
             Catch::Contains("trust domain 'other.domain'"));
  CHECK_THAT(verifyError(*other_domain_ca.bundle(), other_domain_ca.issue("a", "b")),
             Catch::Contains("is not the expected 'cluster.local'"));
  CHECK_THAT(verifyError(*bundle, ca.issueRaw({}, false)), Catch::Contains("0 URI SANs"));
  CHECK_THAT(verifyError(*bundle, ca.issueRaw({"spiffe://cluster.local/ns/a/sa/b",
                                               "spiffe://cluster.local/ns/a/sa/c"},
                                              false)),
             Catch::Contains("2 URI SANs"));
  CHECK_THAT(verifyError(*bundle, ca.issueRaw({"https://cluster.local/ns/a/sa/b"}, false)),
             Catch::Contains("must start with spiffe://"));
  CHECK_THAT(verifyError(*bundle, ca.issueRaw({"spiffe://cluster.local/ns/a/sa/b"}, true)),
             Catch::Contains("is a CA certificate"));
  // The raw path itself is sound: the same leaf without the CA bit is accepted.
  CHECK(verifyError(*bundle, ca.issueRaw({"spiffe://cluster.local/ns/a/sa/b"}, false)) ==
        "accepted");
}

TEST_CASE("an expired root is reported as such") {
  const absl::Time now = absl::Now();
  fakes::FakeCa ca("cluster.local", now - absl::Hours(10), absl::Hours(5));
  fakes::IssuedCert leaf = ca.issue("a", "b", absl::Hours(1), now - absl::Hours(9));
  CHECK_THAT(
      verifyError(*ca.bundle(), leaf, "cluster.local", now - absl::Hours(8) - absl::Minutes(30)),
      Catch::Equals("accepted"));
  CHECK_THAT(verifyError(*ca.bundle(), leaf, "cluster.local", now), Catch::Contains("expired at"));
}

TEST_CASE("a trust bundle refuses non-CA certificates and empty input") {
  fakes::FakeCa ca;
  fakes::IssuedCert leaf = ca.issue("a", "b");
  auto bad = TrustBundle::fromPem(leaf.cert_pem);
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(std::string(bad.status().message()), Catch::Contains("not a CA certificate"));
  auto empty = TrustBundle::fromPem("");
  REQUIRE_FALSE(empty.ok());
  CHECK_THAT(std::string(empty.status().message()), Catch::Contains("trust bundle"));
}

}  // namespace
}  // namespace ferry::tls
