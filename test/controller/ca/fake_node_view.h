// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// A NodeViewProvider fake for CA and distribution tests: a mutable list of workloads and
// services; snapshotFor(node) holds that node's workloads, the other nodes' pods as its pod
// index, and every service.

#include <functional>
#include <mutex>
#include <vector>

#include "controller/node_view.h"

namespace ferry::testing {

class FakeNodeView : public controller::NodeViewProvider {
 public:
  model::NodeSnapshot snapshotFor(const std::string& node) const override {
    std::lock_guard lock(mu_);
    model::NodeSnapshot s;
    s.version = version_;
    s.node = node;
    s.trust_bundle_pem = bundle_;
    for (const model::Workload& w : workloads_) {
      if (w.node == node) {
        s.workloads.push_back(w);
      } else {
        s.pod_index.push_back(model::podIndexEntry(w));
      }
    }
    s.services = services_;
    return s;
  }

  std::optional<model::Workload> findWorkload(const model::ObjectKey& pod) const override {
    std::lock_guard lock(mu_);
    for (const model::Workload& w : workloads_) {
      if (w.key == pod) {
        return w;
      }
    }
    return std::nullopt;
  }

  void subscribe(std::function<void(uint64_t)> on_change) override {
    std::lock_guard lock(mu_);
    subscribers_.push_back(std::move(on_change));
  }

  // Mutations bump the version and notify subscribers (outside the lock, like a real store).
  void upsertWorkload(const model::Workload& w) {
    mutate([&] {
      std::erase_if(workloads_, [&](const model::Workload& x) { return x.uid == w.uid; });
      workloads_.push_back(w);
    });
  }
  void removeWorkload(const std::string& uid) {
    mutate(
        [&] { std::erase_if(workloads_, [&](const model::Workload& x) { return x.uid == uid; }); });
  }
  void upsertService(const model::Service& svc) {
    mutate([&] {
      std::erase_if(services_, [&](const model::Service& x) { return x.key == svc.key; });
      services_.push_back(svc);
    });
  }
  void setBundle(const std::string& pem) {
    mutate([&] { bundle_ = pem; });
  }

  static model::Workload pod(const std::string& ns, const std::string& name,
                             const std::string& node, const std::string& sa = "default") {
    model::Workload w;
    w.uid = ns + "-" + name + "-uid";
    w.key = {ns, name};
    w.node = node;
    w.service_account = sa;
    return w;
  }

 private:
  template <typename F>
  void mutate(F f) {
    std::vector<std::function<void(uint64_t)>> subs;
    uint64_t v;
    {
      std::lock_guard lock(mu_);
      f();
      v = ++version_;
      subs = subscribers_;
    }
    for (auto& s : subs) {
      s(v);
    }
  }

  mutable std::mutex mu_;
  uint64_t version_ = 1;
  std::string bundle_;
  std::vector<model::Workload> workloads_;
  std::vector<model::Service> services_;
  std::vector<std::function<void(uint64_t)>> subscribers_;
};

}  // namespace ferry::testing
