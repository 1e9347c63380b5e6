// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "log/log.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

namespace ferry {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
}  // namespace

const char* levelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

std::optional<LogLevel> parseLogLevel(std::string_view name) {
  for (LogLevel level : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (name == levelName(level)) {
      return level;
    }
  }
  return std::nullopt;
}

LogLevel logLevel() {
  return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed));
}

void setLogLevel(LogLevel level) {
  g_level.store(static_cast<int>(level));
}

bool logEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void logLine(LogLevel level, const std::string& message) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  char when[32];
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &utc);
  // One fprintf per line: stdio locks the stream, so lines from workers never interleave.
  std::fprintf(stderr, "%s.%03ldZ %-5s [%ld] %s\n", when, ts.tv_nsec / 1000000, levelName(level),
               static_cast<long>(::syscall(SYS_gettid)), message.c_str());
}

std::string suppressedNote(uint64_t suppressed) {
  return suppressed == 0 ? "" : absl::StrCat(" (", suppressed, " more like it suppressed)");
}

bool LogLimiter::allow(uint64_t* suppressed) {
  return allowAt(std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::steady_clock::now().time_since_epoch())
                     .count(),
                 suppressed);
}

bool LogLimiter::allowAt(int64_t now, uint64_t* suppressed) {
  int64_t next = next_ns_.load(std::memory_order_relaxed);
  if (now < next ||
      !next_ns_.compare_exchange_strong(next, now + interval_ns_, std::memory_order_relaxed)) {
    suppressed_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  *suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
  return true;
}

}  // namespace ferry
