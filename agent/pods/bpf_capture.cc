// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/pods/bpf_capture.h"

#include <arpa/inet.h>
#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "bpf/abi.h"
#include "log/log.h"

namespace ferry::agent {
namespace {

// libbpf's messages go to the agent's log, each of libbpf's call sites (its format string) at
// most once a second: reading per-CPU counters out of descriptors printed one line per scrape.
int libbpfToLog(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) {
    return 0;
  }
  static std::mutex mu;
  static std::map<const char*, LogLimiter> limiters;
  LogLimiter* limiter = nullptr;
  {
    std::lock_guard lock(mu);
    limiter = &limiters.try_emplace(format).first->second;
  }
  char text[1024];
  std::vsnprintf(text, sizeof(text), format, args);
  std::string line(text);
  while (!line.empty() && line.back() == '\n') {
    line.pop_back();
  }
  if (level == LIBBPF_WARN) {
    LOG_WARN_LIMITED(*limiter, line);  // libbpf's lines start with "libbpf: "
  } else {
    LOG_INFO_LIMITED(*limiter, line);
  }
  return 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpfCapture>> BpfCapture::start(const Config& config) {
  libbpf_set_print(libbpfToLog);
  bpf::BpfConfig bc;
  bc.pin_dir = config.bpffs_dir;
  bc.pod_cgroup = config.cgroup_path;
  bc.agent_mark = config.socket_mark;
  bc.outbound_port = kOutboundPort;
  bc.splice = config.bpf_splice;
  auto capture = bpf::Capture::start(bc);
  if (!capture.ok()) {
    return absl::Status(capture.status().code(),
                        absl::StrCat("eBPF capture: ", capture.status().message()));
  }
  for (const std::string& note : (*capture)->notes()) {
    LOG_INFO("eBPF capture: ", note);
  }
  if (auto s = (*capture)->setMeshCidrs(config.pod_cidrs, config.service_cidrs); !s.ok()) {
    return s;
  }
  return std::unique_ptr<BpfCapture>(new BpfCapture(*std::move(capture)));
}

absl::Status BpfCapture::addPod(const enroll::PodInfo& pod, const Netns&, int inbound_listener_fd) {
  bpf::PodSpec spec;
  spec.netns_path = pod.netns;
  for (const std::string& ip : pod.ips) {
    (ip.find(':') == std::string::npos ? spec.ipv4 : spec.ipv6) = ip;
  }
  std::lock_guard lock(mu_);
  auto handle = capture_->enrollPod(spec);
  if (!handle.ok()) {
    return handle.status();
  }
  if (auto s = capture_->setInboundListener(handle->index, inbound_listener_fd); !s.ok()) {
    (void)capture_->unenrollPod(pod.netns);
    return s;
  }
  pods_[pod.uid] = *handle;
  return absl::OkStatus();
}

void BpfCapture::removePod(const enroll::PodInfo& pod) {
  std::lock_guard lock(mu_);
  auto it = pods_.find(pod.uid);
  if (it == pods_.end()) {
    return;
  }
  (void)capture_->clearInboundListener(it->second.index);
  // By cookie: the namespace may already be gone when the CNI deletes the pod.
  if (auto s = capture_->unenrollPod(it->second.netns_cookie); !s.ok()) {
    LOG_WARN("eBPF capture: unenrol ", pod.name, ": ", s.ToString());
  }
  pods_.erase(it);
}

absl::StatusOr<SocketAddress> BpfCapture::originalDestination(int accepted_fd,
                                                              const enroll::PodInfo&) {
  auto od = capture_->originalDestination(accepted_fd);
  if (!od.ok()) {
    return od.status();
  }
  socklen_t len = od->address.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  return SocketAddress::fromSockaddr(reinterpret_cast<const sockaddr*>(&od->address), len);
}

std::map<std::string, uint64_t> BpfCapture::kernelCounters() const {
  std::map<std::string, uint64_t> out;
  auto counters = capture_->counters();
  if (!counters.ok()) {
    return out;
  }
  for (uint32_t i = 0; i < FERRY_CTR_COUNT; ++i) {
    out[bpf::abi::counterName(i)] = counters->values[i];
  }
  return out;
}

std::map<std::string, uint64_t> BpfCapture::kernelGauges() const {
  std::map<std::string, uint64_t> out;
  if (auto n = capture_->splicedSocketCount(); n.ok()) {
    out["spliced_sockets"] = *n;
  }
  if (auto n = capture_->originalDestinationCount(); n.ok()) {
    out["original_destinations"] = *n;
  }
  return out;
}

}  // namespace ferry::agent
