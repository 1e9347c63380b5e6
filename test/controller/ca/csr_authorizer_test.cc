// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/ca/csr_authorizer.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "controller/ca/fake_node_view.h"
#include "tls/verify.h"
#include "tls/x509.h"

namespace ferry::ca {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

std::string csrFor(const std::string& uri) {
  auto key = tls::generateP256Key();
  REQUIRE(key.ok());
  auto id = tls::SpiffeId::parse(uri);
  REQUIRE(id.ok());
  auto csr = tls::createCsr(key->get(), *id);
  REQUIRE(csr.ok());
  return *tls::csrToPem(csr->get());
}

TEST_CASE("workload CSRs are signed only for the caller's own pods and service accounts", "[ca]") {
  std::string tmpl = (std::filesystem::temp_directory_path() / "ferry-csr-XXXXXX").string();
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  auto ca = CertificateAuthority::loadOrCreate(tmpl, CaConfig{}, kT0);
  REQUIRE(ca.ok());
  testing::FakeNodeView view;
  view.upsertWorkload(testing::FakeNodeView::pod("shop", "web-1", "node1", "web"));
  view.upsertWorkload(testing::FakeNodeView::pod("shop", "db-1", "node2", "db"));
  model::Workload opted_out = testing::FakeNodeView::pod("shop", "legacy", "node1", "legacy");
  opted_out.mesh_enabled = false;
  view.upsertWorkload(opted_out);
  WorkloadCsrAuthorizer authz(**ca, view);

  struct Row {
    const char* description;
    std::string caller;
    model::ObjectKey pod;
    std::string asked;
    const char* refusal;  // nullptr: signed
  };
  const std::vector<Row> rows = {
      {"own pod, own service account",
       "node1",
       {"shop", "web-1"},
       "spiffe://cluster.local/ns/shop/sa/web",
       nullptr},
      {"pod on another node",
       "node1",
       {"shop", "db-1"},
       "spiffe://cluster.local/ns/shop/sa/db",
       "scheduled on node 'node2'"},
      {"mismatched service account",
       "node1",
       {"shop", "web-1"},
       "spiffe://cluster.local/ns/shop/sa/db",
       "runs as service account 'web'"},
      {"other namespace for the same account name",
       "node1",
       {"shop", "web-1"},
       "spiffe://cluster.local/ns/kube-system/sa/web",
       "runs as service account 'web'"},
      {"unknown pod",
       "node1",
       {"shop", "ghost"},
       "spiffe://cluster.local/ns/shop/sa/web",
       "not known to the controller"},
      {"pod opted out of the mesh",
       "node1",
       {"shop", "legacy"},
       "spiffe://cluster.local/ns/shop/sa/legacy",
       "not in the mesh"},
      {"node identity through the workload path",
       "node1",
       {"shop", "web-1"},
       "spiffe://cluster.local/ns/ferry.node/sa/node1",
       "runs as service account"},
  };
  for (const Row& row : rows) {
    INFO(row.description);
    auto result = authz.signForPod(row.caller, row.pod, csrFor(row.asked), kT0);
    if (row.refusal == nullptr) {
      REQUIRE(result.ok());
      auto bundle = tls::TrustBundle::fromPem(result->trust_bundle_pem);
      REQUIRE(bundle.ok());
      auto leaf = tls::certFromPem(result->cert_pem);
      REQUIRE(leaf.ok());
      auto id = tls::verifySvid(**bundle, leaf->get(), nullptr, "cluster.local", kT0);
      REQUIRE(id.ok());
      CHECK(id->uri() == row.asked);
    } else {
      CHECK(result.status().code() == absl::StatusCode::kPermissionDenied);
      CHECK_THAT(std::string(result.status().message()), Catch::Contains(row.refusal));
    }
  }
  std::filesystem::remove_all(tmpl);
}

TEST_CASE("csrUriSans reads what a CSR asks for and rejects garbage", "[ca]") {
  auto sans = csrUriSans(csrFor("spiffe://cluster.local/ns/a/sa/b"));
  REQUIRE(sans.ok());
  CHECK(*sans == std::vector<std::string>{"spiffe://cluster.local/ns/a/sa/b"});
  CHECK(csrUriSans("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n").status().code() ==
        absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::ca
