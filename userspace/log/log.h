// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The one logger of ferry-agent and ferry-controller: one line per event on stderr, with UTC
// time, level and thread ("2026-12-03T07:43:54.123Z info  [4711] message"). Never called per
// byte; the agent's data path logs only on connection events, and every line that can repeat per
// connection or per object goes through a LogLimiter (LOG_*_EVERY_SECOND or LOG_*_LIMITED), so a
// flood of refused connections or failed accepts costs a line a second. The level is the only
// global state, kept here; --log-level sets it at start, the agent's admin /logging at run time.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace ferry {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void setLogLevel(LogLevel level);
LogLevel logLevel();
const char* levelName(LogLevel level);
// "debug", "info", "warn" or "error"; anything else is nullopt.
std::optional<LogLevel> parseLogLevel(std::string_view name);
bool logEnabled(LogLevel level);
void logLine(LogLevel level, const std::string& message);

#define FERRY_LOG(level, ...)                                                  \
  do {                                                                         \
    if (::ferry::logEnabled(::ferry::LogLevel::level)) {                       \
      ::ferry::logLine(::ferry::LogLevel::level, ::absl::StrCat(__VA_ARGS__)); \
    }                                                                          \
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
  // The same on a given clock (nanoseconds, monotonic): tests pass a fake one.
  bool allowAt(int64_t now_ns, uint64_t* suppressed);

 private:
  const int64_t interval_ns_;
  std::atomic<int64_t> next_ns_{0};
  std::atomic<uint64_t> suppressed_{0};
};

// "" or " (N more like it suppressed)".
std::string suppressedNote(uint64_t suppressed);

#define FERRY_LOG_LIMITED(level, limiter, ...)                                                   \
  do {                                                                                           \
    uint64_t ferry_suppressed_ = 0;                                                              \
    if (::ferry::logEnabled(::ferry::LogLevel::level) && (limiter).allow(&ferry_suppressed_)) {  \
      ::ferry::logLine(::ferry::LogLevel::level,                                                 \
                       ::absl::StrCat(__VA_ARGS__, ::ferry::suppressedNote(ferry_suppressed_))); \
    }                                                                                            \
  } while (0)

// With a limiter of the caller's (one per cause, shared by several call sites).
#define LOG_WARN_LIMITED(limiter, ...) FERRY_LOG_LIMITED(kWarn, limiter, __VA_ARGS__)
#define LOG_INFO_LIMITED(limiter, ...) FERRY_LOG_LIMITED(kInfo, limiter, __VA_ARGS__)

// At most one line a second from this call site (its own limiter, shared by every thread): for
// every line the data path can repeat per connection, request or accept.
#define FERRY_LOG_EVERY_SECOND(level, ...)                      \
  do {                                                          \
    static ::ferry::LogLimiter ferry_site_limiter_;             \
    FERRY_LOG_LIMITED(level, ferry_site_limiter_, __VA_ARGS__); \
  } while (0)
#define LOG_INFO_EVERY_SECOND(...) FERRY_LOG_EVERY_SECOND(kInfo, __VA_ARGS__)
#define LOG_WARN_EVERY_SECOND(...) FERRY_LOG_EVERY_SECOND(kWarn, __VA_ARGS__)
#define LOG_ERROR_EVERY_SECOND(...) FERRY_LOG_EVERY_SECOND(kError, __VA_ARGS__)

}  // namespace ferry
