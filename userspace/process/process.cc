// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "process/process.h"

#include "absl/synchronization/mutex.h"

namespace ferry::process {

void configure() {
#ifdef NDEBUG
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
}

}  // namespace ferry::process
