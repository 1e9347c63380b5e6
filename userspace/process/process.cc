// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "process/process.h"

#include <malloc.h>
#include <sys/mman.h>

#include <vector>

#include "absl/synchronization/mutex.h"
#include "log/log.h"
#include "process/smaps.h"

namespace ferry::process {

void configure() {
#ifdef NDEBUG
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
}

absl::StatusOr<UnmappedPages> unmapReadOnlyFilePages() {
  absl::StatusOr<std::vector<SmapsMapping>> mappings = readSmaps();
  if (!mappings.ok()) {
    return mappings.status();
  }
  UnmappedPages released;
  for (const SmapsMapping& m : *mappings) {
    if (!m.privateReadOnlyFile() || m.rss_kib == 0) {
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
