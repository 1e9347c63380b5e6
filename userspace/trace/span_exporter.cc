// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "trace/span_exporter.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "trace/curl_library.h"
#include "trace/otlp.h"

namespace ferry::trace {
namespace {

size_t discardBody(char* /*data*/, size_t size, size_t n, void* /*user*/) {
  return size * n;
}

class CurlTransport : public Transport {
 public:
  CurlTransport(const CurlLibrary& curl, std::string endpoint, absl::Duration timeout)
      : curl_(curl), endpoint_(std::move(endpoint)), timeout_(timeout) {
    easy_ = curl_.easy_init();
    headers_ =
        curl_.slist_append(headers_, absl::StrCat("Content-Type: ", kOtlpContentType).c_str());
  }
  ~CurlTransport() override {
    curl_.easy_cleanup(easy_);
    curl_.slist_free_all(headers_);
  }

  absl::Status post(const std::string& body) override {
    if (easy_ == nullptr) {
      return absl::InternalError("curl_easy_init failed");
    }
    curl_.easy_setopt(easy_, CURLOPT_URL, endpoint_.c_str());
    curl_.easy_setopt(easy_, CURLOPT_HTTPHEADER, headers_);
    curl_.easy_setopt(easy_, CURLOPT_POSTFIELDS, body.data());
    curl_.easy_setopt(easy_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_.easy_setopt(easy_, CURLOPT_TIMEOUT_MS,
                      static_cast<long>(absl::ToInt64Milliseconds(timeout_)));
    curl_.easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
    curl_write_callback discard = discardBody;
    curl_.easy_setopt(easy_, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_.easy_perform(easy_);
    if (rc != CURLE_OK) {
      return absl::UnavailableError(
          absl::StrCat("OTLP export to ", endpoint_, ": ", curl_.easy_strerror(rc)));
    }
    long status = 0;
    curl_.easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300) {
      return absl::UnavailableError(
          absl::StrCat("OTLP export to ", endpoint_, ": HTTP status ", status));
    }
    return absl::OkStatus();
  }

 private:
  const CurlLibrary& curl_;
  std::string endpoint_;
  absl::Duration timeout_;
  CURL* easy_ = nullptr;
  curl_slist* headers_ = nullptr;
};

}  // namespace

absl::Status ExporterConfig::validate() const {
  if (!absl::StartsWith(endpoint, "http://") && !absl::StartsWith(endpoint, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("trace endpoint \"", endpoint,
                     "\" must be an http:// or https:// URL (OTLP/HTTP, "
                     "e.g. http://otel-collector.observability:4318/v1/traces)"));
  }
  if (max_queue_spans == 0 || max_batch_spans == 0 || max_batch_spans > max_queue_spans) {
    return absl::InvalidArgumentError(
        "trace queue and batch sizes must be at least 1, the batch no larger than the queue");
  }
  if (flush_interval <= absl::ZeroDuration() || timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("trace flush interval and timeout must be positive");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Transport>> otlpHttpTransport(const ExporterConfig& config) {
  if (absl::Status s = config.validate(); !s.ok()) {
    return s;
  }
  auto curl = curlLibrary();
  if (!curl.ok()) {
    return curl.status();
  }
  return std::make_unique<CurlTransport>(**curl, config.endpoint, config.timeout);
}

absl::StatusOr<std::unique_ptr<SpanExporter>> SpanExporter::create(
    const ExporterConfig& config, std::unique_ptr<Transport> transport) {
  if (absl::Status s = config.validate(); !s.ok()) {
    return s;
  }
  if (transport == nullptr) {
    auto http = otlpHttpTransport(config);
    if (!http.ok()) {
      return http.status();
    }
    transport = *std::move(http);
  }
  return std::unique_ptr<SpanExporter>(new SpanExporter(config, std::move(transport)));
}

SpanExporter::SpanExporter(const ExporterConfig& config, std::unique_ptr<Transport> transport)
    : config_(config), transport_(std::move(transport)) {
  thread_ = std::thread([this] { run(); });
}

SpanExporter::~SpanExporter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

bool SpanExporter::enqueue(Span span) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= config_.max_queue_spans) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    if (queue_.empty()) {
      oldest_ = std::chrono::steady_clock::now();
    }
    queue_.push_back(std::move(span));
    // The first span sets the thread's deadline; a full batch goes at once.
    wake = queue_.size() == 1 || queue_.size() == config_.max_batch_spans;
  }
  if (wake) {
    wake_.notify_one();
  }
  return true;
}

void SpanExporter::flush() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    flush_requested_ = true;
  }
  wake_.notify_one();
}

SpanExporter::Counts SpanExporter::counts() const {
  Counts c{.exported = exported_.load(), .failed = failed_.load(), .dropped = dropped_.load()};
  std::lock_guard<std::mutex> lock(mu_);
  c.queued = queue_.size();
  return c;
}

void SpanExporter::run() {
  const auto interval = absl::ToChronoNanoseconds(config_.flush_interval);
  std::unique_lock<std::mutex> lock(mu_);
  bool last_failed = false;  // the last export failed
  for (;;) {
    // Sleeps until a batch is full, the oldest span is due, a flush is asked for or we stop.
    // The deadline is taken anew on each wake-up: the first span of an empty queue sets it.
    auto due = [&] {
      return !queue_.empty() && std::chrono::steady_clock::now() >= oldest_ + interval;
    };
    while (!stopping_ && !flush_requested_ && queue_.size() < config_.max_batch_spans && !due()) {
      if (queue_.empty()) {
        wake_.wait(lock);
      } else {
        wake_.wait_until(lock, oldest_ + interval);
      }
    }
    const bool stop = stopping_;
    flush_requested_ = false;
    if (stop && last_failed) {
      // Stopping while the collector is away: no last try, so shutdown waits for at most the
      // export already under way.
      failed_.fetch_add(queue_.size(), std::memory_order_relaxed);
      queue_.clear();
    }
    // Everything due goes out now, a batch at a time; the lock is released while sending.
    while (!queue_.empty()) {
      const auto end =
          queue_.begin() + static_cast<long>(std::min(queue_.size(), config_.max_batch_spans));
      std::vector<Span> batch(std::make_move_iterator(queue_.begin()),
                              std::make_move_iterator(end));
      queue_.erase(queue_.begin(), end);
      oldest_ = std::chrono::steady_clock::now();  // the rest waited at least this long
      lock.unlock();
      last_failed = !exportBatch(batch);
      lock.lock();
      if (stop && last_failed) {
        failed_.fetch_add(queue_.size(), std::memory_order_relaxed);  // one try only
        queue_.clear();
      }
      if (!stop && queue_.size() < config_.max_batch_spans && !flush_requested_) {
        break;  // a partial batch waits for its interval again
      }
    }
    if (stop) {
      return;
    }
  }
}

bool SpanExporter::exportBatch(const std::vector<Span>& batch) {
  absl::Status s = transport_->post(encodeOtlp(batch));
  (s.ok() ? exported_ : failed_).fetch_add(batch.size(), std::memory_order_relaxed);
  if (!s.ok() && config_.on_error) {
    config_.on_error(s);
  }
  return s.ok();
}

}  // namespace ferry::trace
