// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// How an agent without a node certificate proves which node it runs on, once, to get one:
//  - standalone: a bootstrap token file (lines "<token> [node]"; a token with a node only
//    bootstraps that node);
//  - Kubernetes: a projected service-account token of the agent's service account, checked
//    with the API server's TokenReview. The token must be node-bound (Kubernetes >= 1.30 puts
//    the node name in the review's extra "authentication.kubernetes.io/node-name"), so an
//    agent cannot claim another node.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ferry::distribution {

class BootstrapAuthenticator {
 public:
  virtual ~BootstrapAuthenticator() = default;
  // OK when `token` entitles its holder to a certificate for `node`; PermissionDenied otherwise.
  virtual absl::Status authenticate(const std::string& token, const std::string& node) = 0;
};

class BootstrapTokenFile : public BootstrapAuthenticator {
 public:
  static absl::StatusOr<std::unique_ptr<BootstrapTokenFile>> load(const std::string& path);
  static absl::StatusOr<std::unique_ptr<BootstrapTokenFile>> parse(const std::string& text);
  absl::Status authenticate(const std::string& token, const std::string& node) override;

 private:
  std::vector<std::pair<std::string, std::string>> entries_;  // token, node ("" = any)
};

// The parts of a TokenReview status Ferry looks at.
struct TokenReviewResult {
  bool authenticated = false;
  std::string username;  // system:serviceaccount:<ns>:<name>
  std::vector<std::string> audiences;
  std::map<std::string, std::vector<std::string>> extra;
  std::string error;
};

// POSTs authentication.k8s.io/v1 TokenReview; implemented over the controller's Kubernetes
// client, faked in tests.
class TokenReviewer {
 public:
  virtual ~TokenReviewer() = default;
  virtual absl::StatusOr<TokenReviewResult> review(const std::string& token,
                                                   const std::vector<std::string>& audiences) = 0;
};

// The request body and the reading of the response, so an HTTP client only has to carry bytes.
std::string tokenReviewRequestBody(const std::string& token,
                                   const std::vector<std::string>& audiences);
absl::StatusOr<TokenReviewResult> parseTokenReviewResponse(const std::string& body);

// A TokenReviewer over any "POST this JSON to this API path" function.
class HttpTokenReviewer : public TokenReviewer {
 public:
  using PostFn =
      std::function<absl::StatusOr<std::string>(const std::string& path, const std::string& body)>;
  explicit HttpTokenReviewer(PostFn post) : post_(std::move(post)) {}
  absl::StatusOr<TokenReviewResult> review(const std::string& token,
                                           const std::vector<std::string>& audiences) override;

 private:
  PostFn post_;
};

class ServiceAccountTokenAuthenticator : public BootstrapAuthenticator {
 public:
  ServiceAccountTokenAuthenticator(TokenReviewer& reviewer, std::string agent_namespace,
                                   std::string agent_service_account, std::string audience)
      : reviewer_(reviewer),
        username_("system:serviceaccount:" + agent_namespace + ":" + agent_service_account),
        audience_(std::move(audience)) {}
  absl::Status authenticate(const std::string& token, const std::string& node) override;

 private:
  TokenReviewer& reviewer_;
  std::string username_;
  std::string audience_;
};

}  // namespace ferry::distribution
