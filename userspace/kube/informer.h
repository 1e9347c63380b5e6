// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Keeps a handler in step with one resource type: list, then watch from the list's
// resourceVersion; after a dropped watch resume from the last version seen (bookmarks move it
// forward); after 410 Gone list again. Failures back off exponentially with jitter.

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backoff/backoff.h"
#include "kube/client.h"
#include "kube/sleeper.h"

namespace ferry::kube {

class InformerHandler {
 public:
  virtual ~InformerHandler() = default;
  // The complete current set after a (re)list: whatever the handler holds that is not in
  // `items` has been deleted meanwhile.
  virtual void onReplace(const std::vector<nlohmann::json>& items) = 0;
  // kAdded, kModified or kDeleted.
  virtual void onEvent(EventType type, const nlohmann::json& object) = 0;
};

struct InformerOptions {
  int64_t page_size = 500;
  // The server ends each watch after this long and the informer resumes; bounds how long a
  // silently broken stream can go unnoticed.
  int watch_timeout_seconds = 300;
  BackoffPolicy backoff;
  uint64_t backoff_seed = 0;  // 0: random
};

struct InformerStats {
  std::atomic<uint64_t> lists{0};
  std::atomic<uint64_t> watches{0};
  std::atomic<uint64_t> gone{0};    // 410s answered by a relist
  std::atomic<uint64_t> errors{0};  // failed lists/watches that were retried after a backoff
  std::atomic<uint64_t> events{0};
  std::atomic<uint64_t> bookmarks{0};
};

class Informer {
 public:
  // `sleeper` null: real time.
  Informer(const Client& client, Resource resource, InformerHandler& handler,
           InformerOptions options = {}, Sleeper* sleeper = nullptr);
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  void start();
  void stop();
  // True once the first list has been handed to the handler.
  bool synced() const { return synced_.load(); }
  // Waits for the first list; false on timeout or stop.
  bool waitForSync(std::chrono::milliseconds timeout);
  std::string resourceVersion() const;
  const InformerStats& stats() const { return stats_; }
  const Resource& resource() const { return resource_; }
  // Why the last attempt failed, for logs and status pages.
  std::string lastError() const;

 private:
  void run();
  void setResourceVersion(std::string rv);
  void noteError(const absl::Status& s);

  const Client& client_;
  const Resource resource_;
  InformerHandler& handler_;
  const InformerOptions options_;
  std::unique_ptr<Sleeper> own_sleeper_;
  Sleeper* sleeper_;
  Backoff backoff_;
  CancelToken cancel_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> synced_{false};
  mutable std::mutex mu_;
  std::condition_variable synced_cv_;
  std::string resource_version_;
  std::string last_error_;
  InformerStats stats_;
  std::thread thread_;
};

}  // namespace ferry::kube
