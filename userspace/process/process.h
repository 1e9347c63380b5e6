// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// What a Ferry binary does to its whole process: at the start of main, before it starts a
// thread (configure), and after work that runs rarely (giveBackMemory).

namespace ferry::process {

// Release builds (NDEBUG) turn off absl::Mutex's deadlock detector; debug and sanitizer builds
// keep it, and so does every test binary (none calls this). Debian builds Abseil without NDEBUG,
// so the detector is on unless a binary turns it off: every lock then records the order of the
// locks its thread holds in one process-wide graph, guarded by one global lock. That made an
// uncontended lock 2.7x slower (bench/README.md), on the agent's workers and in gRPC, which
// locks with absl::Mutex too.
void configure();

// What unmapReadOnlyFilePages gave back.
struct UnmappedPages {
  int mappings = 0;      // mappings whose pages were unmapped
  uint64_t bytes = 0;    // their resident bytes before
  int kept_written = 0;  // read-only mappings left as they were: they hold pages written
  int failed = 0;        // mappings madvise refused (for example locked ones)
};

// Unmaps from this process every page it maps from a file for reading or running only: the
// code and constants of its binary and shared libraries. Work that runs rarely (starting, with
// OpenSSL's and libbpf's initialisation; making keys and certificate requests) maps code that
// does not run again soon, and the kernel maps the 64 KiB of the file around each page run
// (fault-around); all of it stays in the process's RSS for as long as the process runs. After
// this call the process maps back only what it runs from then on. The pages stay in the page cache,
// like any file page no process maps (shared, reclaimable), so mapping one back is a minor fault,
// not a read from disk.
//
// A private mapping that holds a page the process wrote (relocated data made read-only
// afterwards, a debugger's breakpoint) is left whole: unmapping it would put the file's bytes
// back in place of the written ones. Only private mappings of regular paths are touched: not the
// vDSO, not shared mappings (BPF maps, rings). An error only when /proc/self/smaps cannot be read
// or parsed (process/smaps.h).
// Not while another thread loads or unloads a library (dlopen, dlclose): a mapping read from
// smaps could be replaced before it is unmapped. A page mapped back is read from the file as it
// is then: a binary or library rewritten in place, rather than replaced by a rename as package
// managers and image layers do, would be read back changed.
absl::StatusOr<UnmappedPages> unmapReadOnlyFilePages();

// After work that runs rarely (`after` names it for the log): gives the heap's free memory back
// to the kernel (malloc_trim: malloc keeps it once a large block freed earlier raised its trim
// threshold), then unmapReadOnlyFilePages. Logs one line with what it gave back.
void giveBackMemory(absl::string_view after);

}  // namespace ferry::process
