// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// List and watch any Kubernetes resource, in the API server's own wire format: paginated lists
// (limit/continue) and a chunked stream of newline-separated watch events.

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kube/config.h"
#include "kube/http_client.h"
#include "kube/resource.h"

namespace ferry::kube {

enum class EventType { kAdded, kModified, kDeleted, kBookmark, kError };
const char* eventTypeName(EventType type);

struct WatchEvent {
  EventType type;
  nlohmann::json object;
};

struct ListPage {
  std::vector<nlohmann::json> items;
  std::string resource_version;
  std::string continue_token;  // empty on the last page
};

struct ListResult {
  std::vector<nlohmann::json> items;
  std::string resource_version;  // watch from here
};

// The HTTP status behind a failed call (0 when the call never got an answer).
long httpStatusOf(const absl::Status& status);
// 410 Gone: the resourceVersion (or continue token) is older than the server's history.
bool isGone(const absl::Status& status);

class Client {
 public:
  explicit Client(KubeConfig config) : http_(std::move(config)) {}

  absl::StatusOr<ListPage> listPage(const Resource& resource, int64_t limit,
                                    const std::string& continue_token,
                                    CancelToken* cancel = nullptr) const;
  // Every page, with kind/apiVersion filled into items (list items omit them). Restarts
  // from the first page if a continue token expires mid-way.
  absl::StatusOr<ListResult> list(const Resource& resource, int64_t page_size = 500,
                                  CancelToken* cancel = nullptr) const;

  // Streams events newer than `resource_version` (with bookmarks) until the server ends the
  // watch (OK), `on_event` returns false (OK), the token is cancelled (Cancelled), the
  // connection breaks (Unavailable) or the server reports an error: a 410 as an HTTP status or
  // as an ERROR event both give a status for which isGone() holds.
  absl::Status watch(const Resource& resource, const std::string& resource_version,
                     int timeout_seconds, const std::function<bool(const WatchEvent&)>& on_event,
                     CancelToken* cancel = nullptr) const;

  // Plain object calls, for tools and tests.
  absl::StatusOr<nlohmann::json> get(const Resource& resource, const std::string& ns,
                                     const std::string& name) const;
  absl::StatusOr<nlohmann::json> create(const Resource& resource,
                                        const nlohmann::json& object) const;
  absl::StatusOr<nlohmann::json> update(const Resource& resource,
                                        const nlohmann::json& object) const;
  absl::Status remove(const Resource& resource, const std::string& ns,
                      const std::string& name) const;

  const HttpClient& http() const { return http_; }

 private:
  absl::StatusOr<nlohmann::json> call(const std::string& method, const std::string& path,
                                      const std::string& body) const;
  HttpClient http_;
};

}  // namespace ferry::kube
