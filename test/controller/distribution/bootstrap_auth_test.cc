// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/distribution/bootstrap_auth.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace ferry::distribution {
namespace {

TEST_CASE("bootstrap token file: shared and node-bound tokens", "[distribution]") {
  auto file = BootstrapTokenFile::parse(
      "# comment\nshared-token-0123456789\nnode2-only-token-012345 node2\n");
  REQUIRE(file.ok());
  CHECK((*file)->authenticate("shared-token-0123456789", "node1").ok());
  CHECK((*file)->authenticate("node2-only-token-012345", "node2").ok());
  CHECK((*file)->authenticate("node2-only-token-012345", "node1").code() ==
        absl::StatusCode::kPermissionDenied);
  CHECK((*file)->authenticate("shared-token-012345678", "node1").code() ==
        absl::StatusCode::kPermissionDenied);
  CHECK((*file)->authenticate("", "node1").code() == absl::StatusCode::kPermissionDenied);

  CHECK_THAT(std::string(BootstrapTokenFile::parse("short\n").status().message()),
             Catch::Contains("shorter than 16"));
  CHECK_FALSE(BootstrapTokenFile::parse("# nothing\n").ok());
  CHECK_FALSE(BootstrapTokenFile::parse("a-long-enough-token-x n1 extra\n").ok());
}

class FakeReviewer : public TokenReviewer {
 public:
  absl::StatusOr<TokenReviewResult> review(const std::string& token,
                                           const std::vector<std::string>& audiences) override {
    last_audiences = audiences;
    if (token == "down") {
      return absl::UnavailableError("API server unreachable");
    }
    auto r = parseTokenReviewResponse(response);
    REQUIRE(r.ok());
    return r;
  }
  std::string response;
  std::vector<std::string> last_audiences;
};

std::string reviewJson(bool authenticated, const std::string& user, const std::string& audience,
                       const std::string& node) {
  nlohmann::json extra = nlohmann::json::object();
  extra["authentication.kubernetes.io/pod-name"] = {"ferry-agent-x1"};
  if (!node.empty()) {
    extra["authentication.kubernetes.io/node-name"] = {node};
  }
  nlohmann::json j = {{"apiVersion", "authentication.k8s.io/v1"},
                      {"kind", "TokenReview"},
                      {"status",
                       {{"authenticated", authenticated},
                        {"audiences", {audience}},
                        {"user",
                         {{"username", user},
                          {"uid", "1234"},
                          {"groups", {"system:serviceaccounts"}},
                          {"extra", extra}}}}}};
  return j.dump();
}

TEST_CASE("service-account token bootstrap via TokenReview", "[distribution]") {
  FakeReviewer reviewer;
  ServiceAccountTokenAuthenticator authn(reviewer, "ferry-system", "ferry-agent",
                                         "ferry-controller");
  const std::string agent = "system:serviceaccount:ferry-system:ferry-agent";
  struct Row {
    const char* description;
    std::string response;
    absl::StatusCode code;
    const char* reason;
  };
  const std::vector<Row> rows = {
      {"agent token bound to this node", reviewJson(true, agent, "ferry-controller", "node1"),
       absl::StatusCode::kOk, ""},
      {"not authenticated", reviewJson(false, "", "ferry-controller", ""),
       absl::StatusCode::kPermissionDenied, "rejected"},
      {"another audience", reviewJson(true, agent, "vault", "node1"),
       absl::StatusCode::kPermissionDenied, "audience"},
      {"another service account",
       reviewJson(true, "system:serviceaccount:shop:web", "ferry-controller", "node1"),
       absl::StatusCode::kPermissionDenied, "only 'system:serviceaccount:ferry-system"},
      {"bound to another node", reviewJson(true, agent, "ferry-controller", "node2"),
       absl::StatusCode::kPermissionDenied, "bound to node 'node2'"},
      {"not node-bound", reviewJson(true, agent, "ferry-controller", ""),
       absl::StatusCode::kPermissionDenied, "not bound to a node"},
  };
  for (const Row& row : rows) {
    INFO(row.description);
    reviewer.response = row.response;
    absl::Status s = authn.authenticate("some-token", "node1");
    CHECK(s.code() == row.code);
    CHECK_THAT(std::string(s.message()), Catch::Contains(row.reason));
  }
  CHECK(reviewer.last_audiences == std::vector<std::string>{"ferry-controller"});
  CHECK(authn.authenticate("down", "node1").code() == absl::StatusCode::kUnavailable);
}

TEST_CASE("HttpTokenReviewer posts a TokenReview and reads the status", "[distribution]") {
  std::string posted_path, posted_body;
  HttpTokenReviewer reviewer(
      [&](const std::string& path, const std::string& body) -> absl::StatusOr<std::string> {
        posted_path = path;
        posted_body = body;
        return reviewJson(true, "system:serviceaccount:ferry-system:ferry-agent", "aud", "n1");
      });
  auto r = reviewer.review("tok", {"aud"});
  REQUIRE(r.ok());
  CHECK(posted_path == "/apis/authentication.k8s.io/v1/tokenreviews");
  nlohmann::json body = nlohmann::json::parse(posted_body);
  CHECK(body["kind"] == "TokenReview");
  CHECK(body["spec"]["token"] == "tok");
  CHECK(body["spec"]["audiences"] == nlohmann::json({"aud"}));
  CHECK(r->authenticated);
  CHECK(r->extra.at("authentication.kubernetes.io/node-name") == std::vector<std::string>{"n1"});
  CHECK_FALSE(parseTokenReviewResponse("{}").ok());
}

}  // namespace
}  // namespace ferry::distribution
