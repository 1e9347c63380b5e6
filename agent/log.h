// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Minimal structured-enough logging for the agent: one line per event on stderr, with UTC time,
// level and thread. Never called per byte; the data path logs only on connection events.

#include <atomic>
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

}  // namespace ferry::agent
