// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/standalone_source.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "k8s/loader.h"
#include "log/log.h"

namespace ferry::controller {
namespace {

constexpr uint32_t kWatchMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB;

}  // namespace

StandaloneSource::StandaloneSource(std::filesystem::path dir, StateStore& store,
                                   StandaloneOptions options)
    : dir_(std::move(dir)), store_(store), options_(std::move(options)) {}

StandaloneSource::~StandaloneSource() {
  stop();
  if (inotify_fd_ >= 0) {
    ::close(inotify_fd_);
  }
  if (wake_fd_ >= 0) {
    ::close(wake_fd_);
  }
}

absl::Status StandaloneSource::start() {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir_, ec)) {
    return absl::NotFoundError(
        absl::StrCat("manifest folder ", dir_.string(), " does not exist or is not a directory"));
  }
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (inotify_fd_ < 0 || wake_fd_ < 0) {
    return absl::InternalError(absl::StrCat("inotify/eventfd: ", std::strerror(errno)));
  }
  // Watch before the first load so no change between the two is missed.
  if (auto s = addWatches(dir_); !s.ok()) {
    return s;
  }
  reload();
  thread_ = std::thread([this] { watchLoop(); });
  return absl::OkStatus();
}

absl::Status StandaloneSource::addWatches(const std::filesystem::path& dir) {
  int wd = ::inotify_add_watch(inotify_fd_, dir.c_str(), kWatchMask);
  if (wd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot watch ", dir.string(), " for changes: ", std::strerror(errno)));
  }
  watch_dirs_[wd] = dir;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_directory(ec) && !entry.is_symlink(ec)) {
      if (auto s = addWatches(entry.path()); !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

bool StandaloneSource::waitForSync(std::chrono::milliseconds timeout) {
  return waitForReload(0, timeout);
}

bool StandaloneSource::waitForReload(uint64_t seen, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return reloaded_.wait_for(lock, timeout, [&] { return reloads_.load() > seen; });
}

void StandaloneSource::stop() {
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

std::string StandaloneSource::describe() const {
  return absl::StrCat("manifests ", dir_.string());
}

bool StandaloneSource::reload() {
  k8s::LoadResult loaded = k8s::loadFolder(dir_, options_.decode, in_force_);
  for (const auto& e : loaded.errors) {
    if (e.io) {
      // The folder or a file could not be read (out of descriptors, say): what was loaded is
      // incomplete, and replacing the store with it would drop objects from every node's view.
      // Keep the store; the caller tries again. One line per spell, not per try.
      if (!unreadable_) {
        LOG_WARN(e.message, "; keeping the last good state");
      }
      unreadable_ = true;
      std::lock_guard<std::mutex> lock(mu_);
      ++reloads_;
      reloaded_.notify_all();
      return false;
    }
  }
  if (unreadable_) {
    LOG_INFO(dir_.string(), " readable again");
    unreadable_ = false;
  }
  std::set<k8s::ObjectRef> refused = loaded.kept;
  for (const auto& e : loaded.errors) {
    store_.reject(e.source, e.message);
    if (e.ref) {
      refused.insert(*e.ref);
    }
  }
  in_force_ = loaded.inForce(in_force_);
  std::vector<k8s::Decoded> objects;
  objects.reserve(loaded.objects.size());
  for (auto& [ref, decoded] : loaded.objects) {
    objects.push_back(std::move(decoded));
  }
  store_.replace(std::set<k8s::Kind>(std::begin(k8s::kAllKinds), std::end(k8s::kAllKinds)),
                 std::move(objects), refused);
  std::lock_guard<std::mutex> lock(mu_);
  ++reloads_;
  reloaded_.notify_all();
  return true;
}

void StandaloneSource::watchLoop() {
  alignas(inotify_event) char buf[16384];
  bool dirty = false;
  while (true) {
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    // While changes are pending, wait only for the debounce quiet period.
    const int timeout = dirty ? static_cast<int>(options_.debounce.count()) : -1;
    int n = ::poll(fds, 2, timeout);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 || (fds[1].revents & POLLIN)) {
      return;
    }
    if (n == 0) {
      dirty = !reload();  // not readable now: try again after another quiet period
      continue;
    }
    ssize_t len;
    while ((len = ::read(inotify_fd_, buf, sizeof(buf))) > 0) {
      for (char* p = buf; p < buf + len;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        p += sizeof(inotify_event) + ev->len;
        dirty = true;
        if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO)) && ev->len > 0) {
          auto parent = watch_dirs_.find(ev->wd);
          if (parent != watch_dirs_.end()) {
            if (auto s = addWatches(parent->second / ev->name); !s.ok()) {
              LOG_WARN(s.message());
            }
          }
        }
        if (ev->mask & IN_IGNORED) {
          watch_dirs_.erase(ev->wd);
        }
        if (ev->mask & IN_Q_OVERFLOW) {
          LOG_WARN("inotify queue overflowed; reloading ", dir_.string());
        }
      }
    }
  }
}

}  // namespace ferry::controller
