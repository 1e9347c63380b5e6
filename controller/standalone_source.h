// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Standalone mode: the cluster is a folder of Kubernetes manifests (the same YAML an operator
// would kubectl-apply). The folder is loaded at start and again whenever a file in it changes
// (inotify, debounced so an editor's save-rename-chmod dance is one reload). Each reload
// replaces the store's content; a refused object keeps its last good version, and so do the
// objects of a file refused as a whole. What is in force keeps its place against duplicates
// and taken ClusterIPs in files loaded later or sorting earlier (k8s/loader.h).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "controller/source.h"
#include "controller/store.h"
#include "k8s/loader.h"
#include "k8s/object.h"

namespace ferry::controller {

struct StandaloneOptions {
  k8s::DecodeOptions decode;
  // Quiet time after the last file event before reloading.
  std::chrono::milliseconds debounce{100};
};

class StandaloneSource : public Source {
 public:
  StandaloneSource(std::filesystem::path dir, StateStore& store, StandaloneOptions options = {});
  ~StandaloneSource() override;

  absl::Status start() override;
  bool waitForSync(std::chrono::milliseconds timeout) override;
  void stop() override;
  std::string describe() const override;

  // Completed reloads, the initial load included.
  uint64_t reloads() const { return reloads_.load(); }
  // Waits until more than `seen` reloads completed; false on timeout.
  bool waitForReload(uint64_t seen, std::chrono::milliseconds timeout);

 private:
  // False when the folder could not be read: the store is left as it was.
  bool reload();
  void watchLoop();
  absl::Status addWatches(const std::filesystem::path& dir);

  const std::filesystem::path dir_;
  StateStore& store_;
  const StandaloneOptions options_;
  int inotify_fd_ = -1;
  int wake_fd_ = -1;
  std::map<int, std::filesystem::path> watch_dirs_;
  k8s::InForce in_force_;  // what the last reload put in force (reload() only)
  std::thread thread_;
  std::atomic<uint64_t> reloads_{0};
  bool unreadable_ = false;  // the last reload could not read the folder (watch thread only)
  std::mutex mu_;
  std::condition_variable reloaded_;
};

}  // namespace ferry::controller
