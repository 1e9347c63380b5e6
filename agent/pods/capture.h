// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// What the agent needs from traffic capture: tell it about enrolled pods (and their inbound
// listeners, for sk_lookup steering), and recover the original destination of a captured
// outbound connection. The eBPF implementation lives in bpf_capture.*; tests substitute fakes.

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "agent/io/sockets.h"
#include "enroll/protocol.h"

namespace ferry::agent {

class Capture {
 public:
  virtual ~Capture() = default;
  // `inbound_listener_fd`: one of the pod's 15006 listeners (a reuseport group: the kernel
  // picks the worker); `outbound` the same for 15001.
  virtual absl::Status addPod(const enroll::PodInfo& pod, const Netns& netns,
                              int inbound_listener_fd) = 0;
  virtual void removePod(const enroll::PodInfo& pod) = 0;
  // Original destination of a connection accepted on a pod's 15001 listener.
  virtual absl::StatusOr<SocketAddress> originalDestination(int accepted_fd,
                                                            const enroll::PodInfo& pod) = 0;
  // For readiness: the kernel programs are attached (a capture that needs none: true).
  virtual bool attached() const { return true; }
  // For metrics, read at scrape time: kernel counters by name, and gauges (sockets in the
  // splice map, ...). Empty without eBPF.
  virtual std::map<std::string, uint64_t> kernelCounters() const { return {}; }
  virtual std::map<std::string, uint64_t> kernelGauges() const { return {}; }
};

// No capture: pods are served on 15006/15008 only; 15001 has no original destinations.
class NoCapture : public Capture {
 public:
  absl::Status addPod(const enroll::PodInfo&, const Netns&, int) override {
    return absl::OkStatus();
  }
  void removePod(const enroll::PodInfo&) override {}
  absl::StatusOr<SocketAddress> originalDestination(int, const enroll::PodInfo&) override {
    return absl::FailedPreconditionError("capture is off (--capture=none)");
  }
};

}  // namespace ferry::agent
