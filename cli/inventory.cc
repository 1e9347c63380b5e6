// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "cli/inventory.h"

#include <system_error>

#include "absl/strings/str_cat.h"
#include "k8s/loader.h"

namespace ferry::cli {

const model::Workload* Inventory::findPod(const model::ObjectKey& key) const {
  for (const auto& w : workloads) {
    if (w.key == key) {
      return &w;
    }
  }
  return nullptr;
}

std::vector<const model::Service*> Inventory::servicesSelecting(const model::Workload& pod) const {
  std::vector<const model::Service*> out;
  for (const auto& s : services) {
    if (s.key.ns != pod.key.ns || s.selector.empty()) {
      continue;
    }
    bool selected = true;
    for (const auto& [k, v] : s.selector) {
      auto it = pod.labels.find(k);
      if (it == pod.labels.end() || it->second != v) {
        selected = false;
        break;
      }
    }
    if (selected) {
      out.push_back(&s);
    }
  }
  return out;
}

absl::StatusOr<Inventory> loadInventory(const std::filesystem::path& folder,
                                        bool refused_policies_fail_closed) {
  std::error_code ec;
  if (!std::filesystem::is_directory(folder, ec)) {
    return absl::NotFoundError(
        absl::StrCat("manifests folder ", folder.string(), " does not exist or is not a folder"));
  }
  k8s::LoadResult loaded = k8s::loadFolder(folder);
  std::vector<const k8s::LoadError*> bad;
  for (const auto& e : loaded.errors) {
    if (!(refused_policies_fail_closed && e.failed_closed)) {
      bad.push_back(&e);
    }
  }
  if (!bad.empty()) {
    std::string message = absl::StrCat(bad.size(), " bad manifest(s) in ", folder.string(), ":");
    for (const k8s::LoadError* e : bad) {
      absl::StrAppend(&message, "\n  ", e->source, ": ", e->message);
    }
    return absl::InvalidArgumentError(message);
  }
  if (loaded.objects.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no Kubernetes objects in ", folder.string(), " (*.yaml, *.yml, *.json)"));
  }
  Inventory inv;
  inv.workloads = loaded.all<model::Workload>();
  inv.services = loaded.all<model::Service>();
  inv.policies = loaded.all<model::AuthorizationPolicy>();
  inv.rate_limits = loaded.all<model::RateLimitPolicy>();
  inv.request_authentications = loaded.all<model::RequestAuthentication>();
  return inv;
}

std::optional<model::ObjectKey> parsePodName(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size() ||
      text.find('/', slash + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  return model::ObjectKey{std::string(text.substr(0, slash)), std::string(text.substr(slash + 1))};
}

}  // namespace ferry::cli
