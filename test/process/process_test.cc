// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "process/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

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

// The resident KiB of the mapping that starts at `at`, from /proc/self/smaps; -1 if none starts
// there.
long residentKib(const void* at) {
  char prefix[32];
  std::snprintf(prefix, sizeof(prefix), "%lx-", reinterpret_cast<unsigned long>(at));
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool found = false;
  while (std::getline(smaps, line)) {
    if (line.rfind(prefix, 0) == 0) {
      found = true;
    } else if (found && line.rfind("Rss:", 0) == 0) {
      return std::stol(line.substr(4));
    }
  }
  return -1;
}

// A file of `pages` pages, page i filled with the byte 'a' + i, unlinked once mapped.
struct PatternFile {
  explicit PatternFile(int pages) : size(static_cast<size_t>(pages) * 4096) {
    char path[] = "/tmp/ferry-process-test-XXXXXX";
    fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::unlink(path);
    std::string bytes;
    for (int i = 0; i < pages; ++i) {
      bytes.append(4096, static_cast<char>('a' + i));
    }
    REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  }
  ~PatternFile() { ::close(fd); }
  // Maps the whole file private with `prot` and reads every page, so all are resident.
  char* mapAndRead(int prot) const {
    void* p = ::mmap(nullptr, size, prot, MAP_PRIVATE, fd, 0);
    REQUIRE(p != MAP_FAILED);
    const volatile char* bytes = static_cast<const char*>(p);
    for (size_t i = 0; i < size; i += 4096) {
      (void)bytes[i];
    }
    return static_cast<char*>(p);
  }
  bool holdsPattern(const char* p) const {
    for (size_t i = 0; i < size; ++i) {
      if (p[i] != static_cast<char>('a' + i / 4096)) {
        return false;
      }
    }
    return true;
  }
  int fd = -1;
  size_t size = 0;
};

TEST_CASE("unmapReadOnlyFilePages unmaps read-only file pages and the bytes read back the same",
          "[process]") {
  PatternFile file(16);
  char* read_only = file.mapAndRead(PROT_READ);
  char* code = file.mapAndRead(PROT_READ | PROT_EXEC);
  REQUIRE(residentKib(read_only) == 64);
  REQUIRE(residentKib(code) == 64);

  auto released = unmapReadOnlyFilePages();
  REQUIRE(released.ok());
  CHECK(released->mappings >= 2);
  CHECK(released->bytes >= 128 * 1024);
  CHECK(released->failed == 0);
  CHECK(residentKib(read_only) == 0);
  CHECK(residentKib(code) == 0);
  // Read again, the pages are the file's: mapped back, not zero-filled.
  CHECK(file.holdsPattern(read_only));
  CHECK(file.holdsPattern(code));
  CHECK(residentKib(read_only) == 64);
  ::munmap(read_only, file.size);
  ::munmap(code, file.size);
}

TEST_CASE("unmapReadOnlyFilePages leaves written, writable and shared mappings whole",
          "[process]") {
  PatternFile file(4);
  // Written, then made read-only, as the loader does with relocated data: its copy of page 0 is
  // the process's own; unmapping it would bring the file's byte back.
  char* written = file.mapAndRead(PROT_READ | PROT_WRITE);
  written[0] = 'X';
  REQUIRE(::mprotect(written, file.size, PROT_READ) == 0);
  char* writable = file.mapAndRead(PROT_READ | PROT_WRITE);
  void* shared_at = ::mmap(nullptr, file.size, PROT_READ, MAP_SHARED, file.fd, 0);
  REQUIRE(shared_at != MAP_FAILED);
  const volatile char* shared = static_cast<const char*>(shared_at);
  (void)shared[0];
  long shared_before = residentKib(shared_at);
  REQUIRE(shared_before > 0);

  auto released = unmapReadOnlyFilePages();
  REQUIRE(released.ok());
  CHECK(released->kept_written >= 1);
  CHECK(written[0] == 'X');
  CHECK(residentKib(written) == 16);
  CHECK(residentKib(writable) == 16);
  CHECK(residentKib(shared_at) == shared_before);
  ::munmap(written, file.size);
  ::munmap(writable, file.size);
  ::munmap(shared_at, file.size);
}

}  // namespace
}  // namespace ferry::process
