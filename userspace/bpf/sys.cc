// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "bpf/sys.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bpf/fd.h"

namespace ferry::bpf {
namespace {

std::string errnoText(int err) {
  return std::strerror(err);
}

bool hasFsMagic(const std::string& path, int64_t magic) {
  struct statfs fs {};
  return ::statfs(path.c_str(), &fs) == 0 && static_cast<int64_t>(fs.f_type) == magic;
}

}  // namespace

absl::Status makeDirs(const std::string& path) {
  std::string partial;
  for (const auto& part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    absl::StrAppend(&partial, "/", part);
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::InternalError(absl::StrCat("mkdir ", partial, ": ", errnoText(errno)));
    }
  }
  return absl::OkStatus();
}

absl::Status ensureBpffs(const std::string& root) {
  if (hasFsMagic(root, BPF_FS_MAGIC)) {
    return absl::OkStatus();
  }
  if (absl::Status s = makeDirs(root); !s.ok()) {
    return s;
  }
  if (::mount("bpf", root.c_str(), "bpf", 0, "mode=0700") != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("no bpffs at ", root, " and mounting one failed (", errnoText(errno),
                     "); mount it with `mount -t bpf bpf ", root, "`"));
  }
  return absl::OkStatus();
}

std::vector<std::string> listDir(const std::string& path) {
  std::vector<std::string> names;
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) {
    return names;
  }
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_type != DT_DIR) {
      names.emplace_back(entry->d_name);
    }
  }
  ::closedir(dir);
  return names;
}

bool isCgroup2(const std::string& path) {
  return hasFsMagic(path, CGROUP2_SUPER_MAGIC);
}

absl::StatusOr<std::string> selfCgroupPath() {
  std::ifstream cgroups("/proc/self/cgroup");
  std::string line;
  std::string relative;
  bool found = false;
  while (std::getline(cgroups, line)) {
    if (line.rfind("0::", 0) == 0) {
      relative = line.substr(3);
      found = true;
    }
  }
  if (!found) {
    return absl::FailedPreconditionError("this process is in no cgroup v2 hierarchy");
  }
  std::ifstream mounts("/proc/self/mounts");
  while (std::getline(mounts, line)) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() >= 3 && fields[2] == "cgroup2") {
      return relative == "/" ? fields[1] : fields[1] + relative;
    }
  }
  return absl::FailedPreconditionError("cgroup v2 is not mounted");
}

absl::StatusOr<uint64_t> cgroupId(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("cgroup ", path, ": ", errnoText(errno)));
  }
  return static_cast<uint64_t>(st.st_ino);
}

}  // namespace ferry::bpf
