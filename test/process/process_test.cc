// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "process/process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "absl/synchronization/mutex.h"

namespace ferry::process {
namespace {

// Runs, in a child process, two locks taken in one order and then in the other (one thread, so
// no real deadlock), after configure() if `configured`. Returns the child's wait status.
int lockBothOrders(bool configured) {
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The abort is the child's answer, not a failure of this test: Catch's handler, inherited
    // from the parent, would report it as one. The parent reads only the status.
    ::signal(SIGABRT, SIG_DFL);
    ::close(STDOUT_FILENO);
    ::close(STDERR_FILENO);
    if (configured) {
      configure();
    }
    absl::Mutex a, b;
    {
      absl::MutexLock la(&a);
      absl::MutexLock lb(&b);
    }
    {
      absl::MutexLock lb(&b);
      absl::MutexLock la(&a);
    }
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  return status;
}

TEST_CASE("Debian's Abseil runs the mutex deadlock detector unless a binary turns it off",
          "[process]") {
  // Why configure() exists: taking two locks in both orders aborts the process.
  int status = lockBothOrders(false);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
}

TEST_CASE("configure turns the deadlock detector off in release builds, not in debug ones",
          "[process]") {
  int status = lockBothOrders(true);
#ifdef NDEBUG
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
#else
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
#endif
}

}  // namespace
}  // namespace ferry::process
