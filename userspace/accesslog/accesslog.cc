// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "accesslog/accesslog.h"

#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace ferry::accesslog {
namespace {

using nlohmann::json;

const char* kindName(Kind kind) {
  return kind == Kind::kRequest ? "request" : "connection";
}

const char* reporterName(Reporter r) {
  return r == Reporter::kSource ? "source" : "destination";
}

// Appends `s` as a JSON string exactly as nlohmann::json::dump(-1, ' ', false, replace) writes
// it. Written by hand: the access log is on by default and a DOM per line cost the data path
// allocations for every key and value. Only bytes below 0x80 take the fast path; anything else
// (UTF-8, or bytes that are not UTF-8 and become U+FFFD) is left to nlohmann so the replacement
// rules stay the library's.
void appendString(std::string& out, std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) {
      out += nlohmann::json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
      return;
    }
  }
  out += '"';
  // Runs of bytes that need no escape are appended whole (one append per run, not per byte).
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') {
      continue;
    }
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

// `"key":` followed by the string, or null when it is empty.
void appendField(std::string& out, std::string_view key, std::string_view value) {
  out += '"';
  out += key;
  out += "\":";
  if (value.empty()) {
    out += "null";
  } else {
    appendString(out, value);
  }
}

constexpr char kTimestampFormat[] = "%Y-%m-%dT%H:%M:%E3SZ";

// `"timestamp":"2026-12-06T00:41:05.123Z"`, as absl::FormatTime(kTimestampFormat, t, UTC) writes
// it. The part up to the seconds is formatted once per second per thread: a time zone
// conversion for every request was a visible part of the access log's cost.
void appendTimestamp(std::string& out, absl::Time t) {
  const absl::Time earliest = absl::UnixEpoch();
  const absl::Time latest = absl::FromUnixSeconds(253402300799);  // 9999-12-31T23:59:59Z
  if (t < earliest || t > latest) {
    appendField(out, "timestamp", absl::FormatTime(kTimestampFormat, t, absl::UTCTimeZone()));
    return;
  }
  const int64_t ms = absl::ToUnixMillis(t);  // rounds down, as %E3S does
  const int64_t second = ms / 1000;
  thread_local int64_t cached_second = -1;
  thread_local std::string cached;  // "2026-12-06T00:41:05"
  if (second != cached_second) {
    cached =
        absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(second), absl::UTCTimeZone());
    cached_second = second;
  }
  const auto milli = static_cast<int>(ms % 1000);
  out += "\"timestamp\":\"";
  out += cached;
  out += '.';
  out += static_cast<char>('0' + milli / 100);
  out += static_cast<char>('0' + milli / 10 % 10);
  out += static_cast<char>('0' + milli % 10);
  out += "Z\"";
}

void appendPeer(std::string& out, std::string_view key, const Peer& peer) {
  out += '"';
  out += key;
  out += "\":{";
  appendField(out, "address", peer.address);
  out += ',';
  appendField(out, "namespace", peer.ns);
  out += ',';
  appendField(out, "principal", peer.principal);
  out += ',';
  appendField(out, "workload", peer.workload);
  out += '}';
}

const char* decisionName(PolicyDecision d) {
  switch (d) {
    case PolicyDecision::kAllow:
      return "allow";
    case PolicyDecision::kDeny:
      return "deny";
    case PolicyDecision::kNone:
      break;
  }
  return "";
}

}  // namespace

std::string toJson(const Entry& e) {
  std::string out;
  out.reserve(768);
  appendJson(out, e);
  return out;
}

void appendJson(std::string& out, const Entry& e) {
  // Every field is always present (null when unknown) so that downstream parsers see one shape.
  // Keys in byte order, as the nlohmann object this replaced wrote them (its map sorts them).
  out += '{';
  appendField(out, "authority", e.authority);
  absl::StrAppend(&out, ",\"bytes_received\":", e.bytes_received, ",\"bytes_sent\":", e.bytes_sent,
                  ",");
  appendPeer(out, "destination", e.destination);
  out += ',';
  appendField(out, "destination_service", e.destination_service);
  absl::StrAppend(&out, ",\"duration_ms\":", absl::ToInt64Milliseconds(e.duration), ",");
  appendField(out, "kind", kindName(e.kind));
  out += ',';
  appendField(out, "method", e.method);
  out += ',';
  appendField(out, "parent_span_id", e.parent_span_id);
  out += ',';
  appendField(out, "path", e.path);
  out += ',';
  appendField(out, "policy_decision", decisionName(e.policy_decision));
  out += ',';
  appendField(out, "policy_name", e.policy_name);
  out += ',';
  // A string, as Istio's policy rule names are.
  char rule[16];
  size_t rule_length = 0;
  if (e.policy_rule >= 0) {
    rule_length = std::to_chars(rule, rule + sizeof(rule), e.policy_rule).ptr - rule;
  }
  appendField(out, "policy_rule", std::string_view(rule, rule_length));
  out += ',';
  appendField(out, "reporter", reporterName(e.reporter));
  if (e.response_code) {
    absl::StrAppend(&out, ",\"response_code\":", *e.response_code, ",");
  } else {
    out += ",\"response_code\":null,";
  }
  appendField(out, "response_flags", e.response_flags);
  out += ',';
  appendPeer(out, "source", e.source);
  out += ',';
  appendField(out, "span_id", e.span_id);
  out += ',';
  appendTimestamp(out, e.timestamp);
  out += ',';
  appendField(out, "trace_id", e.trace_id);
  out += '}';
}

namespace {
thread_local bool t_defer_flushes = false;
thread_local std::FILE* t_unflushed = nullptr;  // the stream this thread's waiting lines are in
}  // namespace

void FileSink::write(std::string_view line) {
  // One lock around the line and its newline: workers log concurrently, lines never interleave
  // (a full buffer is written out under the same lock).
  flockfile(file_);
  fwrite_unlocked(line.data(), 1, line.size(), file_);
  fputc_unlocked('\n', file_);
  if (!t_defer_flushes) {
    fflush_unlocked(file_);
  }
  funlockfile(file_);
  if (t_defer_flushes && t_unflushed != file_) {
    flushDeferred();  // another stream's lines first: at most one waits per thread
    t_unflushed = file_;
  }
}

void FileSink::deferFlushes() {
  t_defer_flushes = true;
}

void FileSink::flushDeferred() {
  if (t_unflushed != nullptr) {
    std::fflush(t_unflushed);
    t_unflushed = nullptr;
  }
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
  // Encoded into a buffer each thread keeps: a line allocates nothing once it has grown.
  thread_local std::string line;
  line.clear();
  appendJson(line, entry);
  sink_->write(line);
  written_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace ferry::accesslog
