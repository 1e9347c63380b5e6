// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// An in-process fake of the Kubernetes API server for tests and benchmarks. It speaks the real
// wire format over HTTP/1.1 on 127.0.0.1 (port 0): paginated lists carrying the list's
// resourceVersion and continue tokens, chunked watch streams of newline-separated JSON events
// (ADDED/MODIFIED/DELETED/BOOKMARK/ERROR), one cluster-wide increasing resourceVersion, 410 Gone
// for versions older than the last compaction, and create/update/delete of JSON objects. Faults
// are injected by calling methods: drop every watch connection, compact history, answer the
// next watches with 410.

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kube/config.h"
#include "kube/resource.h"

namespace ferry::fakes {

struct FakeApiServerOptions {
  // How a watch from a compacted resourceVersion fails: the API server normally answers 200 and
  // an ERROR event with code 410; some paths (and older servers) answer HTTP 410 instead.
  bool gone_as_http_status = false;
  // Periodic bookmarks on watches that asked for them; zero: only on sendBookmarks().
  std::chrono::milliseconds bookmark_interval{0};
  // When set, requests must carry "Authorization: Bearer <token>" or get 401.
  std::string required_token;
  // CustomResourceDefinitions (as JSON) of custom kinds among kube::kKnownResources: their
  // short names, printer columns and schemas appear in discovery and OpenAPI.
  std::vector<nlohmann::json> crds;
  // As a real server: creating an object in a namespace that does not exist is 404. Off by
  // default so tests need not create the namespaces their objects name.
  bool require_namespaces = false;
  // Namespaces that exist from the start (a real cluster has default, kube-system, ...).
  std::vector<std::string> initial_namespaces;
};

class Discovery;

class FakeApiServer {
 public:
  static absl::StatusOr<std::unique_ptr<FakeApiServer>> start(FakeApiServerOptions options = {});
  ~FakeApiServer();
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  uint16_t port() const { return port_; }
  std::string url() const;
  // A client configuration pointing at this server (plain HTTP, the required token if any).
  kube::KubeConfig clientConfig() const;

  // The object API, the same operations the HTTP API offers. Objects carry apiVersion, kind
  // and metadata.name (+ metadata.namespace for namespaced kinds).
  absl::StatusOr<nlohmann::json> create(nlohmann::json object);
  // Replaces; a metadata.resourceVersion in `object` must match the stored one (409 if not).
  absl::StatusOr<nlohmann::json> update(nlohmann::json object);
  // Create or replace, ignoring resourceVersion.
  absl::StatusOr<nlohmann::json> apply(nlohmann::json object);
  absl::Status remove(const kube::Resource& resource, const std::string& ns,
                      const std::string& name);
  std::optional<nlohmann::json> get(const kube::Resource& resource, const std::string& ns,
                                    const std::string& name) const;
  uint64_t resourceVersion() const;

  // Faults.
  void dropWatches();               // closes every open watch mid-stream (no final chunk)
  void compact();                   // history up to now is gone: older versions get 410
  void failNextWatches(int count);  // the next `count` watch requests get 410
  // The next `count` watches of one resource get 410 (deterministic with many informers).
  void failNextWatches(const kube::Resource& resource, int count);
  void sendBookmarks();  // a BOOKMARK at the current version on every open watch
  // While held, new watch requests wait unanswered (a slow or partitioned API server): a test
  // can then change history before the client's next watch is served.
  void holdWatches();
  void releaseWatches();

  // What clients did, for assertions.
  uint64_t listRequests(const kube::Resource& resource) const;
  uint64_t watchRequests(const kube::Resource& resource) const;
  size_t openWatches() const;
  // Waits until at least `count` watches are open; false on timeout.
  bool waitForOpenWatches(size_t count, std::chrono::milliseconds timeout) const;

  // Internal types, public so the HTTP layer in the .cc can name them.
  struct Event {
    uint64_t rv;
    std::string collection;
    std::string ns;
    std::string type;
    nlohmann::json object;
    nlohmann::json prev;  // the object before a MODIFIED (for selectors on watches)
  };
  struct Request;
  struct Response;
  // A string field of an object's metadata ("" when absent).
  static std::string metaField(const nlohmann::json& object, const char* field);
  // Where a request path points: a resource, a namespace filter and maybe an object name.
  struct Target {
    const kube::Resource* resource = nullptr;
    std::string ns;
    std::string name;
  };

 private:
  explicit FakeApiServer(FakeApiServerOptions options);
  absl::Status listen();
  void acceptLoop();
  void serveConnection(int fd);
  Response handle(const Request& req, int fd, bool* streamed);
  Response handleList(const kube::Resource& r, const std::string& ns, const Request& req);
  // POST, PUT, PATCH and DELETE (write.cc).
  Response handleWrite(const Target& target, const Request& req);
  Response handlePatch(const Target& target, const Request& req);
  // Checks a request body against the target (kind, apiVersion, name, namespace) and fills
  // what the server defaults; a 400 or 422 Status when the body is refused.
  std::optional<Response> admitBody(const Target& target, nlohmann::json& body,
                                    const Request& req) const;
  void serveWatch(int fd, const kube::Resource& r, const std::string& ns, const Request& req);
  absl::StatusOr<nlohmann::json> store(nlohmann::json object, const std::string& mode);
  const kube::Resource* resourceForObject(const nlohmann::json& object, std::string* error) const;
  // 404 when options_.require_namespaces and namespace `ns` of a namespaced kind is missing.
  std::optional<Response> requireNamespace(const kube::Resource& r, const std::string& ns) const;

  const FakeApiServerOptions options_;
  std::unique_ptr<Discovery> discovery_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread accept_thread_;
  std::atomic<bool> stopping_{false};

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  uint64_t rv_ = 1000;
  uint64_t compacted_rv_ = 0;
  uint64_t uid_counter_ = 0;
  uint64_t generated_names_ = 0;
  // Server-side apply: what each field manager applied last, by "collection|ns/name|manager".
  std::map<std::string, nlohmann::json> applied_;
  // collection path -> "ns/name" -> object
  std::map<std::string, std::map<std::string, nlohmann::json>> objects_;
  std::deque<Event> history_;
  // Paginated lists serve every page from the snapshot taken for the first one, as etcd does.
  std::map<std::string, std::vector<nlohmann::json>> list_snapshots_;
  uint64_t drop_epoch_ = 0;
  uint64_t bookmark_epoch_ = 0;
  int fail_next_watches_ = 0;
  bool hold_watches_ = false;
  std::map<std::string, int> fail_next_watches_of_;  // collection path -> count
  size_t open_watches_ = 0;
  std::map<std::string, uint64_t> list_requests_, watch_requests_;
  std::set<int> connections_;
  std::vector<std::thread> connection_threads_;
};

}  // namespace ferry::fakes
