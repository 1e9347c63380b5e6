// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Strict decoders from Kubernetes objects (YAML or JSON: yaml-cpp reads both) into model types.
//
// Ferry's own kinds (AuthorizationPolicy, PeerAuthentication) and HTTPRoute are checked field
// by field: unknown fields, wrong types and bad values are refused. Core kinds (Pod, Service,
// Namespace, ServiceAccount, EndpointSlice) are validated by the API server already and grow
// new fields every release, so inside their spec/status only the fields Ferry reads are checked
// (type and value); metadata and the top level are strict for every kind.
//
// Errors name the object and the field path:
//   AuthorizationPolicy demo/deny-admin: spec.rules[0].to[0].operation.methods: expected a list
//   of strings, got a map

#include <yaml-cpp/yaml.h>

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "k8s/object.h"

namespace ferry::k8s {

// Decodes one object that carries apiVersion and kind.
absl::StatusOr<Decoded> decodeObject(const YAML::Node& node, const DecodeOptions& options = {});
// Decodes an item of a typed list response (PodList items have no apiVersion/kind).
absl::StatusOr<Decoded> decodeObjectAs(Kind kind, const YAML::Node& node,
                                       const DecodeOptions& options = {});
// Parses and decodes one JSON or YAML object (a watch event's "object", an API GET).
absl::StatusOr<Decoded> decodeObjectText(std::string_view text, const DecodeOptions& options = {});
// decodeObjectText of an object already parsed as JSON (what the API server sends): the same
// checks and result, with the node budget counted on the JSON tree (JSON has no aliases) instead
// of by a second YAML pass over the text.
absl::StatusOr<Decoded> decodeJsonObject(const nlohmann::json& object,
                                         const DecodeOptions& options = {});

// What takes the place of an object the decoder refused with `reason`, when something must: for
// an AuthorizationPolicy, a stand-in that denies everything the policy selects until it is fixed
// (policy::refusedStandIn), so that a refused policy never widens access. Nullopt for other
// kinds, objects without a readable name, and AUDIT or dry-run policies.
std::optional<Decoded> refusedStandIn(Kind kind, const YAML::Node& node, std::string reason,
                                      const DecodeOptions& options = {});

// Budgets for one manifest file (and for one object read from the API server). yaml-cpp keeps
// an alias as one shared node, but decoding copies it at every use, so a kilobyte of nested
// aliases (a billion laughs, plain or in `kind: List` items) would expand into gigabytes; and
// its node tree costs about 500 bytes a node even without aliases. Nodes are counted from the
// parser's events before any tree is built, an alias at its anchor's expanded size (List items
// and nested aliases included; an alias cycle is over budget), and counting stops at the
// budget. Objects are the documents and List items. A file over either budget is refused as a
// whole (internal::Budget, budget.h).
inline constexpr size_t kMaxManifestNodes = 250'000;
inline constexpr size_t kMaxManifestObjects = 10'000;

// The outcome for one object of a multi-document file.
struct DocumentResult {
  std::string source;            // "policies/deny.yaml, document 2" (items: ", item 3")
  std::optional<ObjectRef> ref;  // set whenever kind and name could be read, even on error
  absl::StatusOr<Decoded> decoded;
  std::optional<Decoded> stand_in;  // when decoding failed: refusedStandIn()
  bool whole_file = false;          // the file was refused as a whole (over a budget)
};

// Decodes every document of `text` (YAML with `---` separators, or JSON), expanding `kind: List`
// and `<Kind>List` documents into their items. One bad document never hides the others; a
// syntax error ends the file there (the parser cannot resynchronise) and is reported as one
// result. A file over kMaxManifestNodes or kMaxManifestObjects is one result with whole_file
// set and nothing else. `source` names the file in messages.
std::vector<DocumentResult> decodeDocuments(std::string_view text, std::string_view source,
                                            const DecodeOptions& options = {});

// Kind by its Kubernetes name ("Pod", "HTTPRoute"); nullopt when Ferry does not read it.
std::optional<Kind> kindFromName(std::string_view name);

}  // namespace ferry::k8s
