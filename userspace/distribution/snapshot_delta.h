// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Snapshots as a keyed set of serialized resources, the form both ends of the Watch stream keep:
// the controller diffs consecutive per-node snapshots into deltas, the agent applies them. Both
// compare serialized JSON, so "changed" means exactly "would decode differently".

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "distribution/distribution.pb.h"
#include "model/model.h"

namespace ferry::distribution {

using ResourceKey = std::pair<v1::Kind, std::string>;

struct IndexedSnapshot {
  uint64_t version = 0;
  std::string node;
  std::string trust_domain;
  std::string trust_bundle_pem;
  std::map<ResourceKey, std::string> resources;  // -> JSON
  bool operator==(const IndexedSnapshot&) const = default;
};

IndexedSnapshot indexSnapshot(const model::NodeSnapshot& snapshot);

// Decodes every resource; an undecodable one is an error naming it.
absl::StatusOr<model::NodeSnapshot> materialize(const IndexedSnapshot& snapshot);

v1::WatchResponse fullResponse(const IndexedSnapshot& snapshot, const std::string& epoch);
// The changes turning `from` into `to` (empty when equal: still a useful "you are current").
v1::WatchResponse deltaResponse(const IndexedSnapshot& from, const IndexedSnapshot& to,
                                const std::string& epoch);

// Applies a response on top of `state`. All or nothing: on error `state` is untouched (the agent
// keeps its last good state). A delta whose base_version differs from state.version, or any
// resource that does not decode as its kind, is refused. With `materialized` (which must equal
// materialize(state) before), it is kept equal to materialize(state) by decoding only what the
// response carries.
absl::Status applyResponse(const v1::WatchResponse& response, IndexedSnapshot& state,
                           model::NodeSnapshot* materialized = nullptr);

std::string kindName(v1::Kind kind);

}  // namespace ferry::distribution
