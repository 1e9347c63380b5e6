// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Test helpers (test/controller/, included as "controller/view_testing.h") for tests that watch
// node views change: a canonical text of a snapshot's content (version excluded) and a bounded
// wait for a condition on the store.

#include <chrono>
#include <functional>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controller/store.h"
#include "eventually.h"

namespace ferry::controller::testing {

inline std::string labelsText(const model::Labels& l) {
  return absl::StrJoin(l, ",", absl::PairFormatter("="));
}

// Everything an agent would act on, minus the version stamp.
inline std::string digest(const model::NodeSnapshot& s) {
  std::string out;
  for (const auto& w : s.workloads) {
    absl::StrAppend(&out, "W ", w.key.str(), " uid=", w.uid, " node=", w.node,
                    " sa=", w.service_account, " mesh=", w.mesh_enabled,
                    " ips=", absl::StrJoin(w.ips, ","), " labels=", labelsText(w.labels), "\n");
  }
  for (const auto& w : s.pod_index) {
    absl::StrAppend(&out, "I ", w.key.str(), " uid=", w.uid, " node=", w.node,
                    " sa=", w.service_account, " mesh=", w.mesh_enabled,
                    " ips=", absl::StrJoin(w.ips, ","), " labels=", labelsText(w.labels), "\n");
  }
  for (const auto& svc : s.services) {
    absl::StrAppend(&out, "S ", svc.key.str(), " vips=", absl::StrJoin(svc.vips, ","),
                    " ports=", svc.ports.size(), " selector=", labelsText(svc.selector), "\n");
  }
  for (const auto& eps : s.endpoints) {
    absl::StrAppend(&out, "E ", eps.service.str());
    for (const auto& e : eps.endpoints) {
      absl::StrAppend(&out, " ", e.ip, "/", e.workload_uid, "/", e.node, "/", e.ready);
    }
    absl::StrAppend(&out, "\n");
  }
  for (const auto& p : s.policies) {
    absl::StrAppend(&out, "P ", p.key.str(), " action=", static_cast<int>(p.action),
                    " selector=", p.selector ? labelsText(*p.selector) : "*",
                    " rules=", p.rules.size(), "\n");
  }
  for (const auto& p : s.peer_authentications) {
    absl::StrAppend(&out, "A ", p.key.str(), " mode=", static_cast<int>(p.mode),
                    " selector=", p.selector ? labelsText(*p.selector) : "*", "\n");
  }
  for (const auto& l : s.rate_limits) {
    absl::StrAppend(&out, "L ", l.key.str(), " target=", l.target_service, ":", l.service_port,
                    " total=", l.total ? l.total->requests_per_second : 0,
                    " identity=", l.identity ? l.identity->requests_per_second : 0,
                    " overrides=", l.overrides.size(), " refused=", l.refused, "\n");
  }
  for (const auto& r : s.routes) {
    absl::StrAppend(&out, "R ", r.key.str(), " rules=", r.rules.size());
    for (const auto& rule : r.rules) {
      for (const auto& b : rule.backends) {
        absl::StrAppend(&out, " ", b.service.str(), ":", b.port, "w", b.weight);
      }
    }
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, "T ", s.trust_domain, " ", s.trust_bundle_pem.size(), "\n");
  return out;
}

inline std::map<std::string, std::string> digests(const StateStore& store,
                                                  const std::vector<std::string>& nodes) {
  std::map<std::string, std::string> out;
  for (const auto& n : nodes) {
    out[n] = digest(store.snapshotFor(n));
  }
  return out;
}

// Polls (bounded: 10 s) until `done` holds (eventually(), polled every 2 ms at most).
inline bool waitUntil(const std::function<bool()>& done) {
  return ferry::testing::eventually(done, std::chrono::seconds(10), "a controller view condition",
                                    std::chrono::milliseconds(2));
}

inline bool hasWorkload(const model::NodeSnapshot& s, const std::string& ns,
                        const std::string& name) {
  for (const auto& w : s.workloads) {
    if (w.key.ns == ns && w.key.name == name) {
      return true;
    }
  }
  return false;
}

template <typename T>
bool hasKey(const std::vector<T>& items, const std::string& ns, const std::string& name) {
  for (const auto& i : items) {
    if (i.key.ns == ns && i.key.name == name) {
      return true;
    }
  }
  return false;
}

// The stand-in of a refused AuthorizationPolicy in a node view (k8s::refusedStandIn), or null.
inline const model::AuthorizationPolicy* standIn(
    const std::vector<model::AuthorizationPolicy>& policies, const std::string& name) {
  for (const auto& p : policies) {
    if (p.key.name == name && !p.refused.empty()) {
      return &p;
    }
  }
  return nullptr;
}

}  // namespace ferry::controller::testing
