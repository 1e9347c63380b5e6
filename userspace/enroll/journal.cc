// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "enroll/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "enroll/pod_json.h"

namespace ferry::enroll {
namespace {
constexpr int kJournalVersion = 1;
}

absl::StatusOr<std::vector<PodInfo>> Journal::load() const {
  std::ifstream in(path_);
  if (!in) {
    if (errno == ENOENT) {
      return std::vector<PodInfo>{};
    }
    return absl::InternalError(absl::StrCat("cannot read ", path_, ": ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return absl::DataLossError(absl::StrCat(path_, ": not a JSON object"));
  }
  if (!parsed.contains("version") || parsed["version"] != kJournalVersion) {
    return absl::DataLossError(
        absl::StrCat(path_, ": unsupported journal version (want ", kJournalVersion, ")"));
  }
  if (!parsed.contains("pods") || !parsed["pods"].is_array()) {
    return absl::DataLossError(absl::StrCat(path_, ": field \"pods\" must be an array"));
  }
  std::vector<PodInfo> pods;
  size_t index = 0;
  for (const auto& entry : parsed["pods"]) {
    auto pod = podFromJson(entry);
    if (!pod.ok()) {
      return absl::DataLossError(
          absl::StrCat(path_, ": pods[", index, "]: ", pod.status().message()));
    }
    pods.push_back(*std::move(pod));
    ++index;
  }
  return pods;
}

absl::Status Journal::save(const std::vector<PodInfo>& pods) const {
  nlohmann::json out{{"version", kJournalVersion}, {"pods", nlohmann::json::array()}};
  for (const PodInfo& pod : pods) {
    out["pods"].push_back(podToJson(pod));
  }
  std::string text = out.dump(2);
  text.push_back('\n');
  std::error_code ec;
  auto parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, ec);
  }
  std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      std::string err = std::strerror(errno);
      ::close(fd);
      return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", err));
    }
    done += static_cast<size_t>(n);
  }
  bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || ::rename(tmp.c_str(), path_.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot replace ", path_, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

Replay replay(const std::vector<PodInfo>& pods,
              const std::function<bool(const std::string& netns)>& netns_exists) {
  Replay out;
  for (const PodInfo& pod : pods) {
    (netns_exists(pod.netns) ? out.kept : out.dropped).push_back(pod);
  }
  return out;
}

bool netnsExists(const std::string& netns_path) {
  struct stat st {};
  return ::stat(netns_path.c_str(), &st) == 0;
}

}  // namespace ferry::enroll
