// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Fetches the key sets of RequestAuthentication jwksUris for the agents (agents never reach out):
// each URI in the store is fetched when it first appears and every `refresh` after, bounded in
// time and size, checked with the verifier's own JWKS parser, and handed to the store, which
// sends it with the node state. A failure is logged and counted and keeps the last good keys
// (StateStore::setJwks); before any success the URI's tokens are refused, as in Istio.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "controller/store.h"

namespace ferry::controller {

struct JwksFetcherOptions {
  std::chrono::milliseconds refresh{std::chrono::minutes(20)};  // istiod's default interval
  std::chrono::milliseconds retry{std::chrono::seconds(10)};    // after a failed fetch
  std::chrono::milliseconds timeout{std::chrono::seconds(5)};   // whole request
  size_t max_bytes = 64 * 1024;                                 // jwt::kMaxJwksBytes
  std::string ca_file;  // extra roots for https (empty: the system's)
};

// One GET of `uri`: the body of a 200 answer within the bounds, else why not.
absl::StatusOr<std::string> fetchJwks(const std::string& uri, const JwksFetcherOptions& options);

class JwksFetcher {
 public:
  JwksFetcher(StateStore& store, JwksFetcherOptions options);
  ~JwksFetcher();
  JwksFetcher(const JwksFetcher&) = delete;
  JwksFetcher& operator=(const JwksFetcher&) = delete;

  uint64_t fetched() const { return fetched_.load(); }
  uint64_t failed() const { return failed_.load(); }

 private:
  void run();

  // Shared with the store's change callback, which may outlive this fetcher.
  struct Wake {
    std::mutex mu;
    std::condition_variable cv;
    bool stop = false;
    bool changed = false;
  };
  StateStore& store_;
  const JwksFetcherOptions options_;
  std::shared_ptr<Wake> wake_ = std::make_shared<Wake>();
  std::map<std::string, std::chrono::steady_clock::time_point> due_;
  std::atomic<uint64_t> fetched_{0}, failed_{0};
  std::thread thread_;
};

}  // namespace ferry::controller
