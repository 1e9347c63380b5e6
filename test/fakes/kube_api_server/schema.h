// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// A custom resource against its CRD's structural OpenAPI v3 schema, as the API server treats
// it: unknown fields are pruned (and reported, for fieldValidation=Strict), defaults are
// filled in, and violations of type, enum, required, anyOf-of-required, pattern, length,
// item/property counts and bounds are field errors (422). CEL rules
// (x-kubernetes-validations) are not evaluated.

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ferry::fakes {

struct FieldError {
  std::string field;    // "spec.action"
  std::string reason;   // FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, ...
  std::string message;  // "Unsupported value: \"MAYBE\": supported values: \"ALLOW\", ..."
};

struct SchemaCheck {
  std::vector<std::string> unknown_fields;  // pruned, e.g. "spec.foo"
  std::vector<FieldError> errors;
};

// Checks `object` (apiVersion, kind and metadata are left alone), pruning and defaulting it.
SchemaCheck checkAgainstSchema(const nlohmann::json& schema, nlohmann::json& object);

}  // namespace ferry::fakes
