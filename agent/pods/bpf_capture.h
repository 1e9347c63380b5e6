// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The eBPF capture (userspace/bpf) behind the agent's Capture interface.

#include <map>
#include <memory>
#include <mutex>

#include "agent/config.h"
#include "agent/pods/capture.h"
#include "bpf/capture.h"

namespace ferry::agent {

class BpfCapture : public Capture {
 public:
  static absl::StatusOr<std::unique_ptr<BpfCapture>> start(const Config& config);

  absl::Status addPod(const enroll::PodInfo& pod, const Netns& netns,
                      int inbound_listener_fd) override;
  void removePod(const enroll::PodInfo& pod) override;
  absl::StatusOr<SocketAddress> originalDestination(int accepted_fd,
                                                    const enroll::PodInfo& pod) override;
  bool attached() const override { return !capture_->kernelObjectIds().links.empty(); }
  std::map<std::string, uint64_t> kernelCounters() const override;
  std::map<std::string, uint64_t> kernelGauges() const override;
  bpf::Capture& loader() { return *capture_; }

 private:
  explicit BpfCapture(std::unique_ptr<bpf::Capture> capture) : capture_(std::move(capture)) {}
  std::unique_ptr<bpf::Capture> capture_;
  std::mutex mu_;                               // enrol/delete only (control thread)
  std::map<std::string, bpf::PodHandle> pods_;  // by uid
};

}  // namespace ferry::agent
