// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Minimal structured-enough logging for the agent: one line per event on stderr, with UTC time,
// level and thread. Never called per byte; the data path logs only on connection events.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"

namespace ferry::agent {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void setLogLevel(LogLevel level);
LogLevel logLevel();
const char* levelName(LogLevel level);
bool logEnabled(LogLevel level);
void logLine(LogLevel level, const std::string& message);

#define FERRY_LOG(level, ...)                                                                \
  do {                                                                                       \
    if (::ferry::agent::logEnabled(::ferry::agent::LogLevel::level)) {                       \
      ::ferry::agent::logLine(::ferry::agent::LogLevel::level, ::absl::StrCat(__VA_ARGS__)); \
    }                                                                                        \
  } while (0)

#define LOG_DEBUG(...) FERRY_LOG(kDebug, __VA_ARGS__)
#define LOG_INFO(...) FERRY_LOG(kInfo, __VA_ARGS__)
#define LOG_WARN(...) FERRY_LOG(kWarn, __VA_ARGS__)
#define LOG_ERROR(...) FERRY_LOG(kError, __VA_ARGS__)

// For warnings that can repeat per connection: lets at most one line through per interval
// (across every thread sharing the limiter) and counts the ones it held back, so a flood of
// refused connections costs a line a second, not a line each.
class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::milliseconds interval = std::chrono::seconds(1))
      : interval_ns_(std::chrono::nanoseconds(interval).count()) {}
  // True when a line may be written now; then `*suppressed` is how many were held back since
  // the last one.
  bool allow(uint64_t* suppressed);

 private:
  const int64_t interval_ns_;
  std::atomic<int64_t> next_ns_{0};
  std::atomic<uint64_t> suppressed_{0};
};

// "" or " (N more like it suppressed)".
std::string suppressedNote(uint64_t suppressed);

#define LOG_WARN_LIMITED(limiter, ...)                                                     \
  do {                                                                                     \
    uint64_t ferry_suppressed_ = 0;                                                        \
    if (::ferry::agent::logEnabled(::ferry::agent::LogLevel::kWarn) &&                     \
        (limiter).allow(&ferry_suppressed_)) {                                             \
      ::ferry::agent::logLine(                                                             \
          ::ferry::agent::LogLevel::kWarn,                                                 \
          ::absl::StrCat(__VA_ARGS__, ::ferry::agent::suppressedNote(ferry_suppressed_))); \
    }                                                                                      \
  } while (0)

}  // namespace ferry::agent
