// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "process/process.h"

#include <malloc.h>
#include <sys/mman.h>

#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "log/log.h"

namespace ferry::process {

void configure() {
#ifdef NDEBUG
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
}

namespace {

// One mapping of /proc/self/smaps: its header line and the two counters read here.
struct Mapping {
  uintptr_t start = 0;
  uintptr_t end = 0;
  bool candidate = false;  // private, read-only, a file with a path
  uint64_t rss_kib = 0;
  uint64_t anonymous_kib = 0;  // pages written: private copies of the file's pages
};

// "start-end perms offset dev inode path": the header of one mapping; nullopt for a field line.
std::optional<Mapping> parseHeader(const std::string& line) {
  std::vector<absl::string_view> fields =
      absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (fields.size() < 5) {
    return std::nullopt;
  }
  std::vector<absl::string_view> range = absl::StrSplit(fields[0], '-');
  Mapping m;
  uint64_t start = 0, end = 0;
  if (range.size() != 2 || !absl::SimpleHexAtoi(range[0], &start) ||
      !absl::SimpleHexAtoi(range[1], &end)) {
    return std::nullopt;
  }
  m.start = start;
  m.end = end;
  absl::string_view perms = fields[1];
  uint64_t inode = 0;
  bool has_inode = absl::SimpleAtoi(fields[4], &inode);
  m.candidate = perms.size() == 4 && perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p' &&
                has_inode && inode != 0 && fields.size() >= 6 && fields[5].front() == '/';
  return m;
}

// "Name:   123 kB" -> 123 when the line is that field.
bool readKib(absl::string_view line, absl::string_view name, uint64_t* kib) {
  if (!absl::ConsumePrefix(&line, name)) {
    return false;
  }
  std::vector<absl::string_view> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
  return !parts.empty() && absl::SimpleAtoi(parts[0], kib);
}

}  // namespace

absl::StatusOr<UnmappedPages> unmapReadOnlyFilePages() {
  std::ifstream smaps("/proc/self/smaps");
  if (!smaps) {
    return absl::UnavailableError("cannot read /proc/self/smaps");
  }
  // Read whole first: unmapping while reading would change what is read.
  std::vector<Mapping> mappings;
  std::string line;
  while (std::getline(smaps, line)) {
    if (std::optional<Mapping> header = parseHeader(line)) {
      mappings.push_back(*header);
    } else if (!mappings.empty()) {
      readKib(line, "Rss:", &mappings.back().rss_kib) ||
          readKib(line, "Anonymous:", &mappings.back().anonymous_kib);
    }
  }
  UnmappedPages released;
  for (const Mapping& m : mappings) {
    if (!m.candidate || m.rss_kib == 0) {
      continue;
    }
    if (m.anonymous_kib != 0) {
      ++released.kept_written;
      continue;
    }
    if (::madvise(reinterpret_cast<void*>(m.start), m.end - m.start, MADV_DONTNEED) != 0) {
      ++released.failed;
      continue;
    }
    ++released.mappings;
    released.bytes += m.rss_kib * 1024;
  }
  return released;
}

void giveBackMemory(absl::string_view after) {
  ::malloc_trim(0);
  auto unmapped = unmapReadOnlyFilePages();
  if (!unmapped.ok()) {
    LOG_WARN("after ", after, ": code pages kept mapped: ", unmapped.status().ToString());
    return;
  }
  LOG_INFO("after ", after, ": unmapped ", unmapped->bytes / 1024, " KiB of code and constants (",
           unmapped->mappings, " mappings; ", unmapped->kept_written, " kept: written; ",
           unmapped->failed, " refused)");
}

}  // namespace ferry::process
