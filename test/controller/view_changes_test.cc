// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// StateStore::changesSince, differentially: after random sequences of changes to policies,
// pods, services and namespaces, each node's view kept up to date from changesSince alone
// equals snapshotFor rebuilt from scratch, and a policy change touches only the views of the
// nodes it concerns.
#include <catch2/catch.hpp>
#include <random>

#include "controller/store.h"
#include "distribution/snapshot_delta.h"

namespace ferry::controller {
namespace {

const std::vector<std::string> kNodes = {"node0", "node1", "node2", "node3"};
const std::vector<std::string> kNamespaces = {"ns0", "ns1", "plain", "ferry-system"};
const std::vector<std::string> kApps = {"a", "b", "c"};

// What an agent would hold, keyed and serialized as the distribution server sends it.
std::map<distribution::ResourceKey, std::string> content(const model::NodeSnapshot& s) {
  return distribution::indexSnapshot(s).resources;
}

// A node view as a consumer of changesSince keeps it.
struct HeldView {
  uint64_t version = 0;
  model::NodeSnapshot snapshot;
};

template <typename T>
void patch(std::vector<T>& list, std::vector<T> upserts,
           const std::vector<model::ObjectKey>& gone) {
  std::erase_if(list, [&](const T& item) {
    return std::find(gone.begin(), gone.end(), item.key) != gone.end() ||
           std::any_of(upserts.begin(), upserts.end(),
                       [&](const T& u) { return u.key == item.key; });
  });
  for (T& u : upserts) {
    list.push_back(std::move(u));
  }
}

// Brings `held` up to date; returns whether it needed a rebuild.
bool refresh(const StateStore& store, const std::string& node, HeldView& held) {
  NodeViewChanges changes = store.changesSince(node, held.version);
  if (changes.rebuild) {
    held.snapshot = store.snapshotFor(node);
    held.version = held.snapshot.version;
    return true;
  }
  model::NodeSnapshot& s = held.snapshot;
  patch(s.policies, std::move(changes.upserts.policies), changes.gone.policies);
  patch(s.peer_authentications, std::move(changes.upserts.peer_authentications),
        changes.gone.peer_authentications);
  patch(s.rate_limits, std::move(changes.upserts.rate_limits), changes.gone.rate_limits);
  patch(s.request_authentications, std::move(changes.upserts.request_authentications),
        changes.gone.request_authentications);
  held.version = changes.version;
  return false;
}

class RandomCluster {
 public:
  explicit RandomCluster(uint32_t seed) : rng_(seed) {}

  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng_)];
  }
  int below(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

  std::optional<model::Labels> selector() {
    switch (below(3)) {
      case 0:
        return std::nullopt;
      case 1:
        return model::Labels{{"app", pick(kApps)}};
      default:
        return model::Labels{{"app", pick(kApps)}, {"tier", below(2) ? "x" : "y"}};
    }
  }

  k8s::Decoded namespaceObject(const std::string& name) {
    model::Namespace ns{name, {}, name != "plain" && below(5) != 0};
    return {{k8s::Kind::kNamespace, {"", name}}, "", ns};
  }

  k8s::Decoded pod(int i) {
    model::Workload w;
    const int ns = below(static_cast<int>(kNamespaces.size()));
    w.key = {kNamespaces[static_cast<size_t>(ns)], "pod" + std::to_string(i)};
    w.uid = "uid-" + w.key.ns + "-" + std::to_string(i);
    w.node = pick(kNodes);
    w.ips = {"10.0." + std::to_string(ns) + "." + std::to_string(i + 1)};
    w.labels = {{"app", pick(kApps)}, {"tier", below(2) ? "x" : "y"}};
    w.mesh_enabled = below(6) != 0;
    return {{k8s::Kind::kPod, w.key}, "", w};
  }

  k8s::Decoded service(int i) {
    model::Service svc;
    svc.key = {pick(kNamespaces), "svc" + std::to_string(i)};
    svc.vips = {"10.96.0." + std::to_string(i + 1)};
    svc.ports = {{"http", 80, 8080, "", "TCP", "http"}};
    svc.selector = {{"app", pick(kApps)}};
    return {{k8s::Kind::kService, svc.key}, "", svc};
  }

  // One of the four policy kinds, with a fresh marker so every upsert changes its content.
  k8s::Decoded policy(int i) {
    const model::ObjectKey key{pick(kNamespaces), "p" + std::to_string(i % 6)};
    const std::string marker = "m" + std::to_string(++marker_);
    switch (i % 4) {
      case 0: {
        model::AuthorizationPolicy p;
        p.key = key;
        p.selector = selector();
        p.root_namespace = key.ns == "ferry-system";
        p.rules.emplace_back();
        p.rules[0].from.emplace_back();
        p.rules[0].from[0].principals = {marker};
        return {{k8s::Kind::kAuthorizationPolicy, key}, "", p};
      }
      case 1: {
        model::PeerAuthentication p;
        p.key = key;
        p.selector = selector();
        p.mode = model::MtlsMode::kStrict;
        p.port_modes[static_cast<uint16_t>(1000 + marker_ % 1000)] = model::MtlsMode::kDisable;
        return {{k8s::Kind::kPeerAuthentication, key}, "", p};
      }
      case 2: {
        model::RateLimitPolicy p;
        p.key = key;
        if (below(2)) {
          p.target_service = "svc" + std::to_string(below(4));
        } else {
          p.selector = selector();
        }
        p.total = model::RateLimit{static_cast<uint32_t>(1 + marker_), 1};
        return {{k8s::Kind::kRateLimitPolicy, key}, "", p};
      }
      default: {
        model::RequestAuthentication p;
        p.key = key;
        p.selector = selector();
        model::JwtRule rule;
        rule.issuer = marker;
        rule.jwks_uri = below(2) ? "https://keys.example/jwks" : "";
        p.jwt_rules = {rule};
        return {{k8s::Kind::kRequestAuthentication, key}, "", p};
      }
    }
  }

  std::mt19937 rng_;
  int marker_ = 0;
};

k8s::ObjectRef refOf(const k8s::Decoded& d) {
  return d.ref;
}

TEST_CASE("node views kept from changesSince equal views rebuilt from scratch", "[controller]") {
  const uint32_t seed = GENERATE(1u, 2u, 3u, 4u);
  RandomCluster r(seed);
  StateStore store(StoreOptions{.endpoints_from_selectors = true});
  for (const auto& ns : kNamespaces) {
    store.upsert(r.namespaceObject(ns));
  }
  for (int i = 0; i < 16; ++i) {
    store.upsert(r.pod(i));
  }
  for (int i = 0; i < 4; ++i) {
    store.upsert(r.service(i));
  }
  std::map<std::string, HeldView> held;
  for (const auto& node : kNodes) {
    refresh(store, node, held[node]);
  }
  int incremental = 0, rebuilt = 0, policy_steps = 0, views_touched = 0, views_untouched = 0;
  for (int step = 0; step < 300; ++step) {
    std::map<std::string, std::map<distribution::ResourceKey, std::string>> before;
    for (const auto& node : kNodes) {
      before[node] = content(store.snapshotFor(node));
    }
    const int what = r.below(20);
    bool policy_change = what < 14;
    if (what < 11) {
      store.upsert(r.policy(r.below(24)));
    } else if (what < 14) {
      store.remove(refOf(r.policy(r.below(24))));
    } else if (what < 16) {
      store.upsert(r.pod(r.below(16)));
    } else if (what < 17) {
      store.remove({k8s::Kind::kPod, {r.pick(kNamespaces), "pod" + std::to_string(r.below(16))}});
    } else if (what < 18) {
      store.upsert(r.service(r.below(4)));
    } else if (what < 19) {
      store.upsert(r.namespaceObject(r.pick(kNamespaces)));
    } else {
      store.setJwks("https://keys.example/jwks",
                    std::string("{\"keys\":[]}") + std::to_string(step));
    }
    policy_steps += policy_change ? 1 : 0;
    for (const auto& node : kNodes) {
      const NodeViewChanges peek = store.changesSince(node, held[node].version);
      const bool was_rebuilt = refresh(store, node, held[node]);
      INFO("seed " << seed << " step " << step << " node " << node);
      const auto now = content(store.snapshotFor(node));
      REQUIRE(content(held[node].snapshot) == now);
      if (policy_change) {
        // A policy change never costs a rebuild, and a node whose view it leaves alone gets
        // nothing to apply.
        REQUIRE_FALSE(was_rebuilt);
        const size_t upserts =
            peek.upserts.policies.size() + peek.upserts.peer_authentications.size() +
            peek.upserts.rate_limits.size() + peek.upserts.request_authentications.size();
        if (now == before[node]) {
          REQUIRE(upserts == 0);
          ++views_untouched;
        } else {
          ++views_touched;
        }
      }
      was_rebuilt ? ++rebuilt : ++incremental;
    }
  }
  // The sequence exercised both paths and policy changes both reached and spared nodes.
  CHECK(policy_steps > 100);
  CHECK(incremental > 400);
  CHECK(rebuilt > 50);
  CHECK(views_touched > 20);
  CHECK(views_untouched > 20);
}

TEST_CASE("a view further behind than the change log is rebuilt", "[controller]") {
  RandomCluster r(7);
  StateStore store;
  store.upsert(r.namespaceObject("ns0"));
  store.upsert(r.pod(0));
  HeldView held;
  refresh(store, "node0", held);
  const uint64_t old_version = held.version;
  for (int i = 0; i < 5000; ++i) {
    store.upsert(r.policy(i));
  }
  CHECK(store.changesSince("node0", old_version).rebuild);
  CHECK_FALSE(store.changesSince("node0", store.version() - 10).rebuild);
  CHECK_FALSE(store.changesSince("node0", store.version()).rebuild);
  CHECK(store.changesSince("node0", store.version() + 1).rebuild);
  REQUIRE(refresh(store, "node0", held));
  CHECK(content(held.snapshot) == content(store.snapshotFor("node0")));
}

}  // namespace
}  // namespace ferry::controller
