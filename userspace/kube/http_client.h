// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// HTTP(S) to the API server over libcurl: TLS with the cluster CA, bearer token or client
// certificate, and streamed response bodies (watches) that another thread can cancel at once.

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "kube/config.h"

namespace ferry::kube {

// Cancels in-flight and future requests that were given this token. Thread-safe.
class CancelToken {
 public:
  void cancel();
  bool cancelled() const { return cancelled_.load(); }

 private:
  friend class HttpClient;
  void attach(void* multi);
  void detach();

  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  void* multi_ = nullptr;  // CURLM* while a request runs
};

struct HttpResponse {
  long status = 0;
  std::string body;  // empty when streamed
};

class HttpClient {
 public:
  explicit HttpClient(KubeConfig config);

  // A complete request. Network and TLS failures are Unavailable; any HTTP status is returned
  // as a response for the caller to judge.
  absl::StatusOr<HttpResponse> request(const std::string& method, const std::string& path,
                                       const std::string& body = "",
                                       CancelToken* cancel = nullptr) const;

  // GET with the body handed to `on_data` as it arrives (already de-chunked). `on_data`
  // returns false to stop reading. Returns the HTTP status once the stream ends; the body of a
  // non-2xx answer is collected into the response instead of being streamed.
  absl::StatusOr<HttpResponse> stream(const std::string& path,
                                      const std::function<bool(std::string_view)>& on_data,
                                      CancelToken* cancel = nullptr) const;

  const KubeConfig& config() const { return config_; }

 private:
  absl::StatusOr<HttpResponse> perform(const std::string& method, const std::string& path,
                                       const std::string& body,
                                       const std::function<bool(std::string_view)>* on_data,
                                       CancelToken* cancel) const;
  KubeConfig config_;
};

}  // namespace ferry::kube
