// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// PATCH for the fake API server: JSON patch (RFC 6902), JSON merge patch (RFC 7386),
// strategic merge patch (merge keys of the built-in kinds Ferry uses, with the $patch,
// $retainKeys, $setElementOrder and $deleteFromPrimitiveList directives) and a simplified
// server-side apply (create or merge, dropping what the same manager applied before and no
// longer applies; no conflicts between managers, no managedFields).

#include <nlohmann/json.hpp>

#include <string>

#include "absl/status/statusor.h"

namespace ferry::fakes {

// The kinds of PATCH by Content-Type; kUnsupported for anything else (415).
enum class PatchType { kJson, kMerge, kStrategic, kApply, kUnsupported };
PatchType patchTypeOf(const std::string& content_type);

// Applies a JSON, merge or strategic patch to `live`. InvalidArgument: the patch body does not
// parse (400); FailedPrecondition: it parses but cannot be applied (422).
absl::StatusOr<nlohmann::json> applyPatch(const nlohmann::json& live, PatchType type,
                                          const std::string& body);

// Strategic merge of `patch` into `original`.
nlohmann::json strategicMerge(const nlohmann::json& original, const nlohmann::json& patch);

// Server-side apply of `applied` by one manager onto `live`: fields `previous` (what the
// manager applied last time, null if never) has and `applied` lacks are removed, then
// `applied` is merged in.
nlohmann::json serverSideApply(const nlohmann::json& live, const nlohmann::json& previous,
                               const nlohmann::json& applied);

// A request body that is JSON or YAML (apply-patch+yaml), as JSON.
absl::StatusOr<nlohmann::json> parseJsonOrYaml(const std::string& body);

}  // namespace ferry::fakes
