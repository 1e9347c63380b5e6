// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The fake API server's objects, history and fault switches.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fakes/kube_api_server/fake_api_server.h"

namespace ferry::fakes {
namespace {

using nlohmann::json;

}  // namespace

std::string FakeApiServer::metaField(const json& obj, const char* field) {
  if (obj.contains("metadata") && obj["metadata"].is_object() && obj["metadata"].contains(field) &&
      obj["metadata"][field].is_string()) {
    return obj["metadata"][field].get<std::string>();
  }
  return "";
}

const kube::Resource* FakeApiServer::resourceForObject(const json& object,
                                                       std::string* error) const {
  if (!object.is_object() || !object.contains("apiVersion") || !object.contains("kind") ||
      !object["apiVersion"].is_string() || !object["kind"].is_string()) {
    *error = "object has no apiVersion/kind";
    return nullptr;
  }
  const std::string api_version = object["apiVersion"].get<std::string>();
  const std::string kind = object["kind"].get<std::string>();
  for (const kube::Resource* r : kube::kKnownResources) {
    if (r->apiVersion() == api_version && r->kind == kind) {
      return r;
    }
  }
  *error = absl::StrCat("no kind \"", kind, "\" is registered for version \"", api_version, "\"");
  return nullptr;
}

absl::StatusOr<json> FakeApiServer::store(json object, const std::string& mode) {
  std::string error;
  const kube::Resource* r = resourceForObject(object, &error);
  if (r == nullptr) {
    return absl::InvalidArgumentError(error);
  }
  const std::string name = FakeApiServer::metaField(object, "name");
  const std::string ns = r->namespaced ? FakeApiServer::metaField(object, "namespace") : "";
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(r->kind, ": metadata.name: Required value"));
  }
  if (r->namespaced && ns.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(r->kind, " \"", name, "\": metadata.namespace: Required value"));
  }
  const std::string collection = r->collectionPath();
  const std::string key = ns + "/" + name;
  std::lock_guard<std::mutex> lock(mu_);
  auto& objs = objects_[collection];
  auto existing = objs.find(key);
  std::string type;
  json prev;
  if (existing == objs.end()) {
    if (mode == "update") {
      return absl::NotFoundError(absl::StrCat(r->plural, " \"", name, "\" not found"));
    }
    type = "ADDED";
    if (FakeApiServer::metaField(object, "uid").empty()) {
      object["metadata"]["uid"] = absl::StrFormat("00000000-0000-4000-8000-%012x", ++uid_counter_);
    }
    object["metadata"]["creationTimestamp"] =
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
  } else {
    if (mode == "create") {
      return absl::AlreadyExistsError(absl::StrCat(r->plural, " \"", name, "\" already exists"));
    }
    const std::string want_rv = FakeApiServer::metaField(object, "resourceVersion");
    if (mode == "update" && !want_rv.empty() &&
        want_rv != FakeApiServer::metaField(existing->second, "resourceVersion")) {
      return absl::FailedPreconditionError(absl::StrCat(
          "Operation cannot be fulfilled on ", r->plural, " \"", name,
          "\": the object has been modified; please apply your changes to the latest version "
          "and try again"));
    }
    type = "MODIFIED";
    prev = existing->second;
    object["metadata"]["uid"] = existing->second["metadata"]["uid"];
    object["metadata"]["creationTimestamp"] = existing->second["metadata"]["creationTimestamp"];
  }
  const uint64_t rv = ++rv_;
  object["metadata"]["resourceVersion"] = std::to_string(rv);
  objs[key] = object;
  history_.push_back(Event{rv, collection, ns, type, object, std::move(prev)});
  cv_.notify_all();
  return object;
}

absl::StatusOr<json> FakeApiServer::create(json object) {
  return store(std::move(object), "create");
}
absl::StatusOr<json> FakeApiServer::update(json object) {
  return store(std::move(object), "update");
}
absl::StatusOr<json> FakeApiServer::apply(json object) {
  return store(std::move(object), "apply");
}

absl::Status FakeApiServer::remove(const kube::Resource& resource, const std::string& ns,
                                   const std::string& name) {
  const std::string collection = resource.collectionPath();
  const std::string key = (resource.namespaced ? ns : "") + "/" + name;
  std::lock_guard<std::mutex> lock(mu_);
  auto& objs = objects_[collection];
  auto it = objs.find(key);
  if (it == objs.end()) {
    return absl::NotFoundError(absl::StrCat(resource.plural, " \"", name, "\" not found"));
  }
  json object = std::move(it->second);
  objs.erase(it);
  const uint64_t rv = ++rv_;
  object["metadata"]["resourceVersion"] = std::to_string(rv);
  history_.push_back(
      Event{rv, collection, resource.namespaced ? ns : "", "DELETED", object, object});
  cv_.notify_all();
  return absl::OkStatus();
}

std::optional<json> FakeApiServer::get(const kube::Resource& resource, const std::string& ns,
                                       const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto c = objects_.find(resource.collectionPath());
  if (c == objects_.end()) {
    return std::nullopt;
  }
  auto it = c->second.find((resource.namespaced ? ns : "") + "/" + name);
  if (it == c->second.end()) {
    return std::nullopt;
  }
  return it->second;
}

uint64_t FakeApiServer::resourceVersion() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rv_;
}

void FakeApiServer::dropWatches() {
  std::lock_guard<std::mutex> lock(mu_);
  ++drop_epoch_;
  cv_.notify_all();
}

void FakeApiServer::compact() {
  std::lock_guard<std::mutex> lock(mu_);
  compacted_rv_ = rv_;
  history_.clear();
  list_snapshots_.clear();
  cv_.notify_all();
}

void FakeApiServer::failNextWatches(int count) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_next_watches_ = count;
}

void FakeApiServer::failNextWatches(const kube::Resource& resource, int count) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_next_watches_of_[resource.collectionPath()] = count;
}

void FakeApiServer::holdWatches() {
  std::lock_guard<std::mutex> lock(mu_);
  hold_watches_ = true;
}

void FakeApiServer::releaseWatches() {
  std::lock_guard<std::mutex> lock(mu_);
  hold_watches_ = false;
  cv_.notify_all();
}

void FakeApiServer::sendBookmarks() {
  std::lock_guard<std::mutex> lock(mu_);
  ++bookmark_epoch_;
  cv_.notify_all();
}

uint64_t FakeApiServer::listRequests(const kube::Resource& resource) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = list_requests_.find(resource.collectionPath());
  return it == list_requests_.end() ? 0 : it->second;
}

uint64_t FakeApiServer::watchRequests(const kube::Resource& resource) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = watch_requests_.find(resource.collectionPath());
  return it == watch_requests_.end() ? 0 : it->second;
}

size_t FakeApiServer::openWatches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_watches_;
}

bool FakeApiServer::waitForOpenWatches(size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return open_watches_ >= count; });
}

}  // namespace ferry::fakes
