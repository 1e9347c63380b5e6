// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/jwks_fetcher.h"

#include <curl/curl.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "jwt/jwks.h"
#include "log/log.h"

namespace ferry::controller {
namespace {

struct Body {
  std::string data;
  size_t max = 0;
  bool over = false;
};

size_t onWrite(char* ptr, size_t size, size_t n, void* user) {
  auto* body = static_cast<Body*>(user);
  if (body->data.size() + size * n > body->max) {
    body->over = true;
    return 0;  // aborts the transfer
  }
  body->data.append(ptr, size * n);
  return size * n;
}

}  // namespace

absl::StatusOr<std::string> fetchJwks(const std::string& uri, const JwksFetcherOptions& options) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy(curl_easy_init(), curl_easy_cleanup);
  if (!easy) {
    return absl::ResourceExhaustedError("libcurl could not allocate a handle");
  }
  CURL* e = easy.get();
  Body body;
  body.max = options.max_bytes;
  curl_easy_setopt(e, CURLOPT_URL, uri.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_bytes));
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, onWrite);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
  if (!options.ca_file.empty()) {
    curl_easy_setopt(e, CURLOPT_CAINFO, options.ca_file.c_str());
  }
  CURLcode rc = curl_easy_perform(e);
  if (body.over || rc == CURLE_FILESIZE_EXCEEDED) {
    return absl::ResourceExhaustedError(
        absl::StrCat(uri, ": answer over ", options.max_bytes, " bytes"));
  }
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(uri, ": ", curl_easy_strerror(rc)));
  }
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    return absl::UnavailableError(absl::StrCat(uri, ": HTTP status ", status));
  }
  if (auto parsed = jwt::parseJwks(body.data); !parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(uri, ": ", parsed.status().message()));
  }
  return std::move(body.data);
}

JwksFetcher::JwksFetcher(StateStore& store, JwksFetcherOptions options)
    : store_(store), options_(std::move(options)) {
  store_.subscribe([weak = std::weak_ptr<Wake>(wake_)](uint64_t) {
    if (auto w = weak.lock()) {
      std::lock_guard lock(w->mu);
      w->changed = true;
      w->cv.notify_all();
    }
  });
  thread_ = std::thread([this] { run(); });
}

JwksFetcher::~JwksFetcher() {
  {
    std::lock_guard lock(wake_->mu);
    wake_->stop = true;
    wake_->cv.notify_all();
  }
  thread_.join();
}

void JwksFetcher::run() {
  using Clock = std::chrono::steady_clock;
  std::unique_lock lock(wake_->mu);
  while (!wake_->stop) {
    wake_->changed = false;
    lock.unlock();
    // URIs no RequestAuthentication names any more are forgotten; new ones are due now.
    std::set<std::string> uris = store_.jwksUris();
    lock.lock();
    std::erase_if(due_, [&](const auto& kv) { return !uris.count(kv.first); });
    for (const auto& uri : uris) {
      due_.emplace(uri, Clock::now());
    }
    auto next = Clock::now() + options_.refresh;
    for (auto& [uri, due] : due_) {
      if (wake_->stop) {
        return;
      }
      if (due <= Clock::now()) {
        const std::string u = uri;
        lock.unlock();
        absl::StatusOr<std::string> jwks = fetchJwks(u, options_);
        if (jwks.ok()) {
          ++fetched_;
        } else {
          ++failed_;
          LOG_WARN("jwksUri fetch failed (last good keys kept, if any): ", jwks.status().message());
        }
        store_.setJwks(u, jwks);
        lock.lock();
        due = Clock::now() + (jwks.ok() ? options_.refresh : options_.retry);
      }
      next = std::min(next, due);
    }
    wake_->cv.wait_until(lock, next, [&] { return wake_->stop || wake_->changed; });
  }
}

}  // namespace ferry::controller
