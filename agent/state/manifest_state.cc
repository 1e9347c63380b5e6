// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/state/manifest_state.h"

#include <chrono>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "k8s/loader.h"
#include "log/log.h"

namespace ferry::agent {

ManifestStateSource::~ManifestStateSource() {
  stop_ = true;
  if (watcher_.joinable()) {
    watcher_.join();
  }
}

std::string ManifestStateSource::signature() const {
  std::string sig;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir_, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) {
      auto mtime = std::filesystem::last_write_time(it->path(), ec).time_since_epoch().count();
      absl::StrAppend(&sig, it->path().string(), ":", it->file_size(ec), ":", mtime, ";");
    }
  }
  return sig;
}

absl::StatusOr<model::NodeSnapshot> ManifestStateSource::build() {
  if (!std::filesystem::is_directory(dir_)) {
    return absl::NotFoundError(absl::StrCat("manifests folder ", dir_, " does not exist"));
  }
  k8s::LoadResult loaded = k8s::loadFolder(dir_, {}, in_force_);
  for (const k8s::LoadError& e : loaded.errors) {
    if (e.io) {
      // Out of descriptors, say: an empty or partial state would drop workloads and policies.
      return absl::UnavailableError(absl::StrCat("manifests: ", e.message));
    }
    LOG_WARN("manifests: ", e.source, ": ", e.message);
  }
  if (!loaded.kept.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "manifests: ", loaded.kept.size(), " objects in force are in files refused as a whole"));
  }
  in_force_ = loaded.inForce(in_force_);
  model::NodeSnapshot snap;
  snap.node = node_;
  snap.trust_domain = trust_domain_;
  snap.workloads = loaded.all<model::Workload>();
  snap.services = loaded.all<model::Service>();
  snap.policies = loaded.all<model::AuthorizationPolicy>();
  snap.peer_authentications = loaded.all<model::PeerAuthentication>();
  snap.routes = loaded.all<model::HttpRoute>();
  snap.rate_limits = loaded.all<model::RateLimitPolicy>();
  // Agents never fetch: a jwksUri needs ferry-controller, so its tokens are refused here.
  snap.request_authentications = loaded.all<model::RequestAuthentication>();
  for (auto& ra : snap.request_authentications) {
    for (auto& rule : ra.jwt_rules) {
      if (!rule.jwks_uri.empty() && rule.jwks.empty()) {
        rule.jwks_error = "jwksUri is fetched by ferry-controller, not in manifest mode";
      }
    }
  }
  std::vector<k8s::EndpointSlice> slices = loaded.all<k8s::EndpointSlice>();
  for (const model::Service& svc : snap.services) {
    std::vector<const k8s::EndpointSlice*> mine;
    for (const auto& s : slices) {
      if (s.key.ns == svc.key.ns && s.service == svc.key.name) {
        mine.push_back(&s);
      }
    }
    if (!mine.empty()) {
      snap.endpoints.push_back(k8s::mergeEndpointSlices(svc.key, mine));
      continue;
    }
    if (svc.selector.empty()) {
      continue;
    }
    model::ServiceEndpoints eps;
    eps.service = svc.key;
    for (const model::Workload& w : snap.workloads) {
      if (w.key.ns != svc.key.ns) {
        continue;
      }
      bool match = true;
      for (const auto& [k, v] : svc.selector) {
        auto it = w.labels.find(k);
        match = match && it != w.labels.end() && it->second == v;
      }
      if (!match) {
        continue;
      }
      for (const std::string& ip : w.ips) {
        eps.endpoints.push_back({ip, w.uid, w.node, w.zone, true});
      }
    }
    snap.endpoints.push_back(std::move(eps));
  }
  return snap;
}

absl::Status ManifestStateSource::start(Callback on_update) {
  auto first = build();
  if (!first.ok()) {
    return first.status();
  }
  uint64_t version = 1;
  first->version = version;
  on_update(*std::move(first));
  std::string sig = signature();
  watcher_ = std::thread([this, on_update, sig, version]() mutable {
    while (!stop_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      std::string now = signature();
      if (now == sig) {
        continue;
      }
      sig = now;
      auto snap = build();
      if (!snap.ok()) {
        LOG_WARN("manifests: ", snap.status().ToString(), "; keeping the last good state");
        continue;
      }
      snap->version = ++version;
      on_update(*std::move(snap));
    }
  });
  return absl::OkStatus();
}

}  // namespace ferry::agent
