// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// What the fake API server tells clients about itself, shaped as the real server's answers:
// /version, legacy discovery (/api, /api/v1, /apis, /apis/<group>, /apis/<group>/<version>)
// and OpenAPI v3 (/openapi/v3 and one document per group-version). The kinds are
// kube::kKnownResources; CustomResourceDefinitions (as JSON) add short names, printer columns
// and schemas for the custom kinds among them.

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "kube/resource.h"

namespace ferry::fakes {

class Discovery {
 public:
  explicit Discovery(const std::vector<nlohmann::json>& crds);

  // The document for `path` (without query), or nullopt when `path` is not a discovery path.
  std::optional<nlohmann::json> serve(const std::string& path) const;
  // The CRD's entry in spec.versions for a custom kind (null when the kind is built in or no
  // CRD was given), for printer columns and schemas.
  const nlohmann::json& crdVersion(const kube::Resource& resource) const;
  // The schema of a kind as OpenAPI v3 (null when unknown).
  const nlohmann::json& schema(const kube::Resource& resource) const;

 private:
  struct Kind {
    const kube::Resource* resource;
    std::string singular;
    std::vector<std::string> short_names;
    std::vector<std::string> categories;
    nlohmann::json crd_version;  // null for built-in kinds
    nlohmann::json schema;
  };
  nlohmann::json resourceList(const std::string& group_version) const;
  nlohmann::json groupEntry(const std::string& group) const;
  nlohmann::json openapiRoot() const;
  nlohmann::json openapiDocument(const std::string& group_version) const;

  std::vector<Kind> kinds_;
};

}  // namespace ferry::fakes
