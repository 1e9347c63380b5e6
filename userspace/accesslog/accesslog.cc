// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "accesslog/accesslog.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace ferry::accesslog {
namespace {

using nlohmann::json;

json stringOrNull(const std::string& s) {
  return s.empty() ? json(nullptr) : json(s);
}

json peerJson(const Peer& peer) {
  return json{{"workload", stringOrNull(peer.workload)},
              {"namespace", stringOrNull(peer.ns)},
              {"principal", stringOrNull(peer.principal)},
              {"address", stringOrNull(peer.address)}};
}

const char* kindName(Kind kind) {
  return kind == Kind::kRequest ? "request" : "connection";
}

const char* reporterName(Reporter r) {
  return r == Reporter::kSource ? "source" : "destination";
}

json decisionJson(PolicyDecision d) {
  switch (d) {
    case PolicyDecision::kAllow:
      return "allow";
    case PolicyDecision::kDeny:
      return "deny";
    case PolicyDecision::kNone:
      break;
  }
  return nullptr;
}

}  // namespace

std::string toJson(const Entry& e) {
  // Every field is always present (null when unknown) so that downstream parsers see one shape.
  json j = {
      {"timestamp", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", e.timestamp, absl::UTCTimeZone())},
      {"kind", kindName(e.kind)},
      {"reporter", reporterName(e.reporter)},
      {"source", peerJson(e.source)},
      {"destination", peerJson(e.destination)},
      {"destination_service", stringOrNull(e.destination_service)},
      {"bytes_sent", e.bytes_sent},
      {"bytes_received", e.bytes_received},
      {"duration_ms", absl::ToInt64Milliseconds(e.duration)},
      {"response_code", e.response_code ? json(*e.response_code) : json(nullptr)},
      {"policy_decision", decisionJson(e.policy_decision)},
      {"policy_name", stringOrNull(e.policy_name)},
      {"trace_id", stringOrNull(e.trace_id)},
      {"span_id", stringOrNull(e.span_id)},
      {"parent_span_id", stringOrNull(e.parent_span_id)},
      {"policy_rule", stringOrNull(e.policy_rule)},
      {"method", stringOrNull(e.method)},
      {"path", stringOrNull(e.path)},
      {"authority", stringOrNull(e.authority)},
      {"response_flags", stringOrNull(e.response_flags)},
  };
  // error_handler_t::replace: a peer-supplied name with invalid UTF-8 must not throw on the
  // data path.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void FileSink::write(std::string_view line) {
  // One lock around the line and its newline: workers log concurrently, lines never interleave.
  flockfile(file_);
  fwrite_unlocked(line.data(), 1, line.size(), file_);
  fputc_unlocked('\n', file_);
  fflush_unlocked(file_);
  funlockfile(file_);
}

void MemorySink::write(std::string_view line) {
  absl::MutexLock lock(&mu_);
  lines_.emplace_back(line);
}

std::vector<std::string> MemorySink::lines() const {
  absl::MutexLock lock(&mu_);
  return lines_;
}

absl::Status Config::validate() const {
  if (std::isnan(sample_rate) || sample_rate < 0.0 || sample_rate > 1.0) {
    return absl::InvalidArgumentError(
        absl::StrCat("accesslog: sample_rate must be between 0 and 1, got ", sample_rate));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Logger>> Logger::create(const Config& config,
                                                       std::shared_ptr<Sink> sink) {
  if (absl::Status s = config.validate(); !s.ok()) {
    return s;
  }
  if (sink == nullptr) {
    sink = std::make_shared<FileSink>();
  }
  return std::unique_ptr<Logger>(new Logger(config, std::move(sink)));
}

Logger::Logger(const Config& config, std::shared_ptr<Sink> sink)
    : config_(config),
      sink_(std::move(sink)),
      rng_(config.seed ? *config.seed : std::random_device{}()) {}

bool Logger::sample() {
  if (config_.sample_rate >= 1.0) {
    return true;
  }
  if (config_.sample_rate <= 0.0) {
    return false;
  }
  absl::MutexLock lock(&mu_);
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < config_.sample_rate;
}

bool Logger::log(const Entry& entry) {
  if (!config_.enabled) {
    return false;
  }
  if (!sample()) {
    sampled_out_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  // Encoded outside any lock: the sink serializes its own writes.
  sink_->write(toJson(entry));
  written_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace ferry::accesslog
