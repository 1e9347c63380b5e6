// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "kube/informer.h"

#include "absl/strings/str_cat.h"
#include "log/log.h"

namespace ferry::kube {
namespace {

std::string objectResourceVersion(const nlohmann::json& obj) {
  auto meta = obj.find("metadata");
  if (meta != obj.end() && meta->is_object()) {
    auto rv = meta->find("resourceVersion");
    if (rv != meta->end() && rv->is_string()) {
      return rv->get<std::string>();
    }
  }
  return "";
}

}  // namespace

Informer::Informer(const Client& client, Resource resource, InformerHandler& handler,
                   InformerOptions options, Sleeper* sleeper)
    : client_(client),
      resource_(std::move(resource)),
      handler_(handler),
      options_(options),
      own_sleeper_(sleeper == nullptr ? std::make_unique<RealSleeper>() : nullptr),
      sleeper_(sleeper == nullptr ? own_sleeper_.get() : sleeper),
      backoff_(options.backoff, options.backoff_seed) {}

Informer::~Informer() {
  stop();
}

void Informer::start() {
  thread_ = std::thread([this] { run(); });
}

void Informer::stop() {
  stopped_.store(true);
  cancel_.cancel();
  sleeper_->wake();
  {
    std::lock_guard<std::mutex> lock(mu_);
    synced_cv_.notify_all();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

bool Informer::waitForSync(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return synced_cv_.wait_for(lock, timeout, [&] { return synced_.load() || stopped_.load(); }) &&
         synced_.load();
}

std::string Informer::resourceVersion() const {
  std::lock_guard<std::mutex> lock(mu_);
  return resource_version_;
}

std::string Informer::lastError() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

void Informer::setResourceVersion(std::string rv) {
  std::lock_guard<std::mutex> lock(mu_);
  resource_version_ = std::move(rv);
}

void Informer::noteError(const absl::Status& s) {
  LOG_WARN("kube: ", resource_.plural, ": ", s.message(), "; retrying");
  std::lock_guard<std::mutex> lock(mu_);
  last_error_ = std::string(s.message());
}

void Informer::run() {
  std::string rv;
  while (!stopped_.load()) {
    if (rv.empty()) {
      auto listed = client_.list(resource_, options_.page_size, &cancel_);
      if (stopped_.load()) {
        break;
      }
      if (!listed.ok()) {
        ++stats_.errors;
        noteError(listed.status());
        sleeper_->sleepFor(absl::ToChronoMilliseconds(backoff_.next()));
        continue;
      }
      ++stats_.lists;
      handler_.onReplace(listed->items);
      rv = listed->resource_version;
      setResourceVersion(rv);
      backoff_.reset();
      if (!synced_.exchange(true)) {
        std::lock_guard<std::mutex> lock(mu_);
        synced_cv_.notify_all();
      }
    }
    ++stats_.watches;
    absl::Status s = client_.watch(
        resource_, rv, options_.watch_timeout_seconds,
        [&](const WatchEvent& ev) {
          const std::string event_rv = objectResourceVersion(ev.object);
          if (ev.type == EventType::kBookmark) {
            ++stats_.bookmarks;
          } else {
            ++stats_.events;
            handler_.onEvent(ev.type, ev.object);
          }
          if (!event_rv.empty()) {
            rv = event_rv;
            setResourceVersion(rv);
          }
          backoff_.reset();
          return !stopped_.load();
        },
        &cancel_);
    if (stopped_.load()) {
      break;
    }
    if (s.ok()) {
      continue;  // the server closed the watch on schedule: resume where we are
    }
    if (isGone(s)) {
      ++stats_.gone;
      noteError(s);
      rv.clear();  // our version fell out of the server's history: list again
      sleeper_->sleepFor(absl::ToChronoMilliseconds(backoff_.next()));
      continue;
    }
    ++stats_.errors;
    noteError(s);
    sleeper_->sleepFor(absl::ToChronoMilliseconds(backoff_.next()));
  }
}

}  // namespace ferry::kube
