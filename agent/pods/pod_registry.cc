// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/pods/pod_registry.h"

#include "agent/proxy/listeners.h"
#include "log/log.h"

namespace ferry::agent {

PodIdentity identityOf(const LocalPod& pod, const model::Workload* from_state) {
  if (from_state != nullptr) {
    return {from_state->key.ns, from_state->service_account};
  }
  return {pod.info.ns, pod.info.service_account.empty() ? "default" : pod.info.service_account};
}

PodRegistry::PodRegistry(EnrollmentTargets targets, std::string journal_path)
    : targets_(std::move(targets)), journal_(std::move(journal_path)) {}

absl::StatusOr<size_t> PodRegistry::restore(InheritedListeners* inherited) {
  auto pods = journal_.load();
  if (!pods.ok()) {
    return pods.status();
  }
  enroll::Replay replay = enroll::replay(*pods, enroll::netnsExists);
  for (const enroll::PodInfo& gone : replay.dropped) {
    LOG_INFO("journal: dropping pod ", gone.ns, "/", gone.name, " (uid ", gone.uid,
             "): its network namespace ", gone.netns, " is gone");
  }
  size_t restored = 0;
  std::lock_guard lock(mu_);
  for (const enroll::PodInfo& pod : replay.kept) {
    if (auto s = add(pod, inherited); !s.ok()) {
      LOG_WARN("journal: cannot restore pod ", pod.ns, "/", pod.name, ": ", s.ToString());
      continue;
    }
    ++restored;
  }
  publish();
  if (auto s = persist(); !s.ok()) {
    LOG_WARN("journal: ", s.ToString());
  }
  return restored;
}

enroll::Reply PodRegistry::handle(const enroll::Request& request) {
  std::lock_guard lock(mu_);
  absl::Status s;
  switch (request.op) {
    case enroll::Op::kAdd:
      s = add(request.pod);
      break;
    case enroll::Op::kDel:
      s = del(request.uid);
      break;
    case enroll::Op::kCheck: {
      auto it = pods_.find(request.uid);
      if (it == pods_.end()) {
        return enroll::Reply::failure("pod uid " + request.uid + " is not enrolled");
      }
      if (!enroll::netnsExists(it->second->info.netns)) {
        return enroll::Reply::failure("pod uid " + request.uid + ": network namespace " +
                                      it->second->info.netns + " is gone");
      }
      return enroll::Reply::success();
    }
  }
  if (!s.ok()) {
    LOG_WARN("enroll ", std::string(enroll::opName(request.op)), " ", request.uid, ": ",
             s.ToString());
    return enroll::Reply::failure(std::string(s.message()));
  }
  publish();
  if (auto p = persist(); !p.ok()) {
    // The pod is served; only a restart would forget it. Say so loudly but do not fail the CNI.
    LOG_ERROR("journal: ", p.ToString());
  }
  return enroll::Reply::success();
}

absl::Status PodRegistry::add(const enroll::PodInfo& info, InheritedListeners* inherited) {
  auto existing = pods_.find(info.uid);
  if (existing != pods_.end()) {
    if (existing->second->info.netns == info.netns) {
      return absl::OkStatus();  // CNI retries ADD; answer the same
    }
    // The sandbox was re-created: the old namespace is no longer the pod's.
    listener_fds_.erase(info.uid);
    PodListeners::stop(*existing->second, targets_.workers);
    targets_.capture.removePod(existing->second->info);
    pods_.erase(existing);
  }
  auto netns = Netns::open(info.netns);
  if (!netns.ok()) {
    return netns.status();
  }
  auto pod = std::make_shared<LocalPod>();
  pod->info = info;
  pod->netns = *std::move(netns);
  if (pod->info.ips.empty()) {
    // The CNI may not know the IPs; the controller's view does.
    if (const model::Workload* w = targets_.workloads.current()->workloadByUid(info.uid)) {
      pod->info.ips = w->ips;
    }
  }
  std::shared_ptr<const LocalPod> shared_pod = pod;
  auto named = PodListeners::start(shared_pod, targets_.workers, targets_.capture, targets_.sockets,
                                   inherited);
  if (!named.ok()) {
    return named.status();
  }
  listener_fds_[info.uid] = *std::move(named);
  pods_[info.uid] = shared_pod;
  LOG_INFO("enrolled pod ", info.ns, "/", info.name, " (uid ", info.uid, ", netns ", info.netns,
           ")");
  return absl::OkStatus();
}

absl::Status PodRegistry::del(const std::string& uid) {
  auto it = pods_.find(uid);
  if (it == pods_.end()) {
    return absl::OkStatus();  // CNI DEL must be idempotent
  }
  // Only an explicit delete ends a pod's capture.
  listener_fds_.erase(uid);
  PodListeners::stop(*it->second, targets_.workers);
  targets_.capture.removePod(it->second->info);
  LOG_INFO("removed pod ", it->second->info.ns, "/", it->second->info.name, " (uid ", uid, ")");
  pods_.erase(it);
  return absl::OkStatus();
}

void PodRegistry::publish() {
  auto table = std::make_shared<LocalPodTable>();
  for (const auto& [uid, pod] : pods_) {
    table->by_uid[uid] = pod;
    for (const std::string& ip : pod->info.ips) {
      table->by_ip[ip] = pod;
    }
  }
  targets_.pods.set(std::move(table));
}

absl::Status PodRegistry::persist() {
  std::vector<enroll::PodInfo> all;
  for (const auto& [uid, pod] : pods_) {
    all.push_back(pod->info);
  }
  return journal_.save(all);
}

void PodRegistry::stopAll() {
  std::lock_guard lock(mu_);
  for (const auto& [uid, pod] : pods_) {
    PodListeners::stop(*pod, targets_.workers);
  }
  pods_.clear();
  listener_fds_.clear();
  publish();
}

void PodRegistry::closeListeners() {
  std::lock_guard lock(mu_);
  for (const auto& [uid, pod] : pods_) {
    PodListeners::stop(*pod, targets_.workers);
  }
  listener_fds_.clear();
}

std::vector<std::pair<std::string, int>> PodRegistry::listenerFds() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, int>> out;
  for (const auto& [uid, named] : listener_fds_) {
    out.insert(out.end(), named.begin(), named.end());
  }
  return out;
}

size_t PodRegistry::size() const {
  std::lock_guard lock(mu_);
  return pods_.size();
}

}  // namespace ferry::agent
