// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "bpf/sys.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bpf/fd.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

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

absl::StatusOr<uint64_t> socketNetnsCookie(int fd) {
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  if (::getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("getsockopt(SO_NETNS_COOKIE): ", errnoText(errno), " (needs Linux 5.14)"));
  }
  return cookie;
}

absl::StatusOr<uint64_t> netnsCookie(const std::string& netns_path) {
  UniqueFd ns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid()) {
    return absl::NotFoundError(
        absl::StrCat("network namespace ", netns_path, ": ", errnoText(errno)));
  }
  // setns() moves only the calling thread; a throwaway thread leaves every other one alone.
  absl::StatusOr<uint64_t> result = absl::InternalError("netns thread did not run");
  std::thread worker([&] {
    if (::setns(ns.get(), CLONE_NEWNET) != 0) {
      result = absl::FailedPreconditionError(
          absl::StrCat("setns(", netns_path, "): ", errnoText(errno)));
      return;
    }
    UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock.valid()) {
      sock.reset(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    }
    if (!sock.valid()) {
      result = absl::InternalError(absl::StrCat("socket in ", netns_path, ": ", errnoText(errno)));
      return;
    }
    result = socketNetnsCookie(sock.get());
  });
  worker.join();
  return result;
}

bool isV4Mapped(const Addr16& addr) {
  static const uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(addr.data(), kPrefix, sizeof(kPrefix)) == 0;
}

absl::StatusOr<Addr16> parseAddress(const std::string& text) {
  Addr16 out{};
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    out[10] = 0xff;
    out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4, 4);
    return out;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    std::memcpy(out.data(), &v6, 16);
    return out;
  }
  return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not an IP address"));
}

absl::StatusOr<std::pair<Addr16, uint32_t>> parseCidr(const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(text, '/');
  uint32_t len = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &len)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a CIDR (address/prefix-length)"));
  }
  absl::StatusOr<Addr16> addr = parseAddress(parts[0]);
  if (!addr.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("CIDR \"", text, "\": ", addr.status().message()));
  }
  bool v4 = parts[0].find(':') == std::string::npos;
  uint32_t max = v4 ? 32 : 128;
  if (len > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("CIDR \"", text, "\": prefix length ", len, " is over ", max));
  }
  uint32_t full = v4 ? 96 + len : len;
  // Host bits must be zero: "10.0.0.1/8" is almost always a typo for something else.
  for (uint32_t bit = full; bit < 128; ++bit) {
    if ((*addr)[bit / 8] & (0x80 >> (bit % 8))) {
      return absl::InvalidArgumentError(
          absl::StrCat("CIDR \"", text, "\": address has bits set past the prefix length"));
    }
  }
  return std::make_pair(*addr, full);
}

Addr16 addressOf(const sockaddr_storage& sa, uint16_t* port) {
  Addr16 out{};
  if (sa.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&sa);
    out[10] = 0xff;
    out[11] = 0xff;
    std::memcpy(out.data() + 12, &in->sin_addr, 4);
    *port = ntohs(in->sin_port);
  } else {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&sa);
    std::memcpy(out.data(), &in6->sin6_addr, 16);
    *port = ntohs(in6->sin6_port);
  }
  return out;
}

sockaddr_storage sockaddrOf(const Addr16& addr, uint16_t port) {
  sockaddr_storage sa{};
  if (isV4Mapped(addr)) {
    auto* in = reinterpret_cast<sockaddr_in*>(&sa);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    std::memcpy(&in->sin_addr, addr.data() + 12, 4);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&sa);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    std::memcpy(&in6->sin6_addr, addr.data(), 16);
  }
  return sa;
}

std::string formatAddress(const Addr16& addr, uint16_t port) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (isV4Mapped(addr)) {
    ::inet_ntop(AF_INET, addr.data() + 12, buf, sizeof(buf));
    return absl::StrCat(buf, ":", port);
  }
  ::inet_ntop(AF_INET6, addr.data(), buf, sizeof(buf));
  return absl::StrCat("[", buf, "]:", port);
}

}  // namespace ferry::bpf
