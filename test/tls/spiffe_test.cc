// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "tls/spiffe.h"

#include <catch2/catch.hpp>

namespace ferry::tls {
namespace {

TEST_CASE("SPIFFE workload IDs parse into trust domain, namespace and account") {
  absl::StatusOr<SpiffeId> id = SpiffeId::parse("spiffe://cluster.local/ns/default/sa/bookinfo");
  REQUIRE(id.ok());
  CHECK(id->trust_domain == "cluster.local");
  CHECK(id->ns == "default");
  CHECK(id->service_account == "bookinfo");
  CHECK(id->uri() == "spiffe://cluster.local/ns/default/sa/bookinfo");
}

TEST_CASE("malformed SPIFFE IDs are refused with the rule they break") {
  struct Row {
    const char* input;
    const char* reason;
  };
  const Row rows[] = {
      {"", "must start with spiffe://"},
      {"https://cluster.local/ns/a/sa/b", "must start with spiffe://"},
      {"SPIFFE://cluster.local/ns/a/sa/b", "must start with spiffe://"},
      {"spiffe:///ns/a/sa/b", "trust domain is empty"},
      {"spiffe://Cluster.local/ns/a/sa/b", "outside [a-z0-9._-]"},
      {"spiffe://cluster.local:8443/ns/a/sa/b", "outside [a-z0-9._-]"},
      {"spiffe://user@cluster.local/ns/a/sa/b", "outside [a-z0-9._-]"},
      {"spiffe://cluster.local", "has no path"},
      {"spiffe://cluster.local/", "path must be /ns/"},
      {"spiffe://cluster.local/ns/a", "path must be /ns/"},
      {"spiffe://cluster.local/ns/a/sa/b/extra", "path must be /ns/"},
      {"spiffe://cluster.local/namespace/a/sa/b", "path must be /ns/"},
      {"spiffe://cluster.local/ns//sa/b", "namespace is empty"},
      {"spiffe://cluster.local/ns/a/sa/", "service account is empty"},
      {"spiffe://cluster.local/ns/../sa/b", "may not be '.' or '..'"},
      {"spiffe://cluster.local/ns/a b/sa/b", "outside [A-Za-z0-9._-]"},
      {"spiffe://cluster.local/ns/a/sa/b?x=1", "query or fragment"},
      {"spiffe://cluster.local/ns/a/sa/b#frag", "query or fragment"},
  };
  for (const Row& row : rows) {
    INFO("input: " << row.input);
    absl::StatusOr<SpiffeId> id = SpiffeId::parse(row.input);
    REQUIRE_FALSE(id.ok());
    CHECK(id.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(id.status().message()), Catch::Contains(row.reason));
  }
}

TEST_CASE("an overlong SPIFFE ID is refused before it is scanned") {
  std::string uri = "spiffe://cluster.local/ns/a/sa/" + std::string(3000, 'b');
  absl::StatusOr<SpiffeId> id = SpiffeId::parse(uri);
  REQUIRE_FALSE(id.ok());
  CHECK_THAT(std::string(id.status().message()), Catch::Contains("longer than 2048"));
}

}  // namespace
}  // namespace ferry::tls
