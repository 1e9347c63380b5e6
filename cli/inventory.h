// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// What ferryctl reads from a manifests folder: pods, services and policies, all or nothing.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/model.h"

namespace ferry::cli {

struct Inventory {
  std::vector<model::Workload> workloads;
  std::vector<model::Service> services;
  std::vector<model::AuthorizationPolicy> policies;
  std::vector<model::RateLimitPolicy> rate_limits;
  std::vector<model::RequestAuthentication> request_authentications;

  const model::Workload* findPod(const model::ObjectKey& key) const;
  // Services in the pod's namespace whose selector the pod's labels satisfy.
  std::vector<const model::Service*> servicesSelecting(const model::Workload& pod) const;
};

// Fails if the folder is missing, holds no manifests, or any object in it does not decode:
// an answer computed from part of the manifests would be wrong without saying so. The error
// lists every bad object with its file and field path. With `refused_policies_fail_closed`, a
// refused AuthorizationPolicy is not an error: it is in the inventory as the deny-all stand-in
// ferry-controller and the agents put in its place (its `refused` says why), as `check` needs.
absl::StatusOr<Inventory> loadInventory(const std::filesystem::path& folder,
                                        bool refused_policies_fail_closed = false);

// "demo/n1p1" -> {demo, n1p1}; nullopt unless exactly one '/' separates two non-empty parts.
std::optional<model::ObjectKey> parsePodName(std::string_view text);

}  // namespace ferry::cli
