// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// What every Ferry binary sets for its whole process at the start of main, before it starts a
// thread.

namespace ferry::process {

// Release builds (NDEBUG) turn off absl::Mutex's deadlock detector; debug and sanitizer builds
// keep it, and so does every test binary (none calls this). Debian builds Abseil without NDEBUG,
// so the detector is on unless a binary turns it off: every lock then records the order of the
// locks its thread holds in one process-wide graph, guarded by one global lock. That made an
// uncontended lock 2.7x slower (bench/README.md), on the agent's workers and in gRPC, which
// locks with absl::Mutex too.
void configure();

}  // namespace ferry::process
