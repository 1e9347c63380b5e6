// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/distribution/bootstrap_auth.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ferry::distribution {
namespace {

bool constantTimeEqual(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BootstrapTokenFile>> BootstrapTokenFile::load(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("bootstrap token file ", path, " cannot be read"));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto parsed = parse(ss.str());
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", parsed.status().message()));
  }
  return parsed;
}

absl::StatusOr<std::unique_ptr<BootstrapTokenFile>> BootstrapTokenFile::parse(
    const std::string& text) {
  auto file = std::make_unique<BootstrapTokenFile>();
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') {
      continue;
    }
    std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    if (fields.size() > 2) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": want '<token> [node]'"));
    }
    if (fields[0].size() < 16) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_no, ": token shorter than 16 characters is too guessable"));
    }
    file->entries_.emplace_back(fields[0], fields.size() == 2 ? fields[1] : "");
  }
  if (file->entries_.empty()) {
    return absl::InvalidArgumentError("no bootstrap token");
  }
  return file;
}

absl::Status BootstrapTokenFile::authenticate(const std::string& token, const std::string& node) {
  bool match = false;
  // Compare against every entry so timing does not reveal which one matched.
  for (const auto& [t, n] : entries_) {
    if (constantTimeEqual(t, token) && (n.empty() || n == node)) {
      match = true;
    }
  }
  if (!match) {
    return absl::PermissionDeniedError(
        absl::StrCat("bootstrap token not valid for node '", node, "'"));
  }
  return absl::OkStatus();
}

std::string tokenReviewRequestBody(const std::string& token,
                                   const std::vector<std::string>& audiences) {
  nlohmann::json body = {{"apiVersion", "authentication.k8s.io/v1"},
                         {"kind", "TokenReview"},
                         {"spec", {{"token", token}, {"audiences", audiences}}}};
  return body.dump();
}

absl::StatusOr<TokenReviewResult> parseTokenReviewResponse(const std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("status") || !j["status"].is_object()) {
    return absl::InternalError("TokenReview response has no status object");
  }
  const nlohmann::json& s = j["status"];
  TokenReviewResult r;
  try {
    r.authenticated = s.value("authenticated", false);
    r.error = s.value("error", "");
    r.audiences = s.value("audiences", std::vector<std::string>{});
    if (s.contains("user") && s["user"].is_object()) {
      r.username = s["user"].value("username", "");
      if (s["user"].contains("extra")) {
        r.extra = s["user"]["extra"].get<std::map<std::string, std::vector<std::string>>>();
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::InternalError(absl::StrCat("TokenReview response: ", e.what()));
  }
  return r;
}

absl::StatusOr<TokenReviewResult> HttpTokenReviewer::review(
    const std::string& token, const std::vector<std::string>& audiences) {
  auto body = post_("/apis/authentication.k8s.io/v1/tokenreviews",
                    tokenReviewRequestBody(token, audiences));
  if (!body.ok()) {
    return absl::UnavailableError(absl::StrCat("TokenReview: ", body.status().message()));
  }
  return parseTokenReviewResponse(*body);
}

absl::Status ServiceAccountTokenAuthenticator::authenticate(const std::string& token,
                                                            const std::string& node) {
  auto result = reviewer_.review(token, {audience_});
  if (!result.ok()) {
    return result.status();  // Unavailable: the agent retries; not a verdict on the token
  }
  if (!result->authenticated) {
    return absl::PermissionDeniedError(
        absl::StrCat("service-account token rejected by TokenReview: ", result->error));
  }
  if (std::find(result->audiences.begin(), result->audiences.end(), audience_) ==
      result->audiences.end()) {
    return absl::PermissionDeniedError(
        absl::StrCat("service-account token is not for audience '", audience_, "'"));
  }
  if (result->username != username_) {
    return absl::PermissionDeniedError(absl::StrCat("token belongs to '", result->username,
                                                    "', only '", username_, "' may bootstrap"));
  }
  auto it = result->extra.find("authentication.kubernetes.io/node-name");
  if (it == result->extra.end() || it->second.size() != 1) {
    return absl::PermissionDeniedError(
        "token is not bound to a node (needs a projected token on Kubernetes >= 1.30)");
  }
  if (it->second[0] != node) {
    return absl::PermissionDeniedError(
        absl::StrCat("token is bound to node '", it->second[0], "', not '", node, "'"));
  }
  return absl::OkStatus();
}

}  // namespace ferry::distribution
