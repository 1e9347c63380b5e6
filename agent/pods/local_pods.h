// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Pods enrolled on this node: their enrollment record and open network namespace. Published as
// an immutable table through an atomic shared_ptr (copy on write at enrol/delete, which are
// rare), so workers look pods up without locks.

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "agent/io/sockets.h"
#include "enroll/protocol.h"
#include "model/model.h"

namespace ferry::agent {

struct LocalPod {
  enroll::PodInfo info;
  Netns netns;
};

struct LocalPodTable {
  std::map<std::string, std::shared_ptr<const LocalPod>> by_uid;
  std::map<std::string, std::shared_ptr<const LocalPod>> by_ip;

  const LocalPod* findByIp(const std::string& ip) const {
    auto it = by_ip.find(ip);
    return it == by_ip.end() ? nullptr : it->second.get();
  }
};

class LocalPodsHolder {
 public:
  std::shared_ptr<const LocalPodTable> current() const { return table_.load(); }
  void set(std::shared_ptr<const LocalPodTable> t) { table_.store(std::move(t)); }

 private:
  std::atomic<std::shared_ptr<const LocalPodTable>> table_{std::make_shared<const LocalPodTable>()};
};

// The identity a local pod speaks with: the controller's view (by uid) when it has one, else
// what the CNI told us at enrolment.
struct PodIdentity {
  std::string ns;
  std::string service_account;
};
PodIdentity identityOf(const LocalPod& pod, const model::Workload* from_state);

}  // namespace ferry::agent
