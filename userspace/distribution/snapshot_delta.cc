// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "distribution/snapshot_delta.h"

#include "absl/strings/str_cat.h"
#include "distribution/model_json.h"

namespace ferry::distribution {
namespace {

template <typename T, typename KeyFn>
void indexAll(v1::Kind kind, const std::vector<T>& items, KeyFn key,
              std::map<ResourceKey, std::string>& out) {
  for (const T& item : items) {
    out[{kind, key(item)}] = nlohmann::json(item).dump();
  }
}

template <typename T>
absl::Status decodeInto(const ResourceKey& id, const std::string& text, std::vector<T>& out) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kindName(id.first), " ", id.second, ": not a JSON object"));
  }
  try {
    out.push_back(j.get<T>());
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(kindName(id.first), " ", id.second, ": ", e.what()));
  }
  return absl::OkStatus();
}

std::string byKey(const auto& item) {
  return item.key.str();
}
std::string byUid(const model::Workload& w) {
  return w.uid.empty() ? w.key.str() : w.uid;
}
std::string byService(const model::ServiceEndpoints& e) {
  return e.service.str();
}

// Calls f(list, key_of) with the NodeSnapshot member listing resources of id's kind and the
// function naming an item of it as a ResourceKey does; an unknown kind is an error.
template <typename F>
absl::Status withList(const ResourceKey& id, F f) {
  using S = model::NodeSnapshot;
  switch (id.first) {
    case v1::KIND_WORKLOAD:
      return f(&S::workloads, byUid);
    case v1::KIND_SERVICE:
      return f(&S::services, byKey<model::Service>);
    case v1::KIND_ENDPOINTS:
      return f(&S::endpoints, byService);
    case v1::KIND_AUTHORIZATION_POLICY:
      return f(&S::policies, byKey<model::AuthorizationPolicy>);
    case v1::KIND_PEER_AUTHENTICATION:
      return f(&S::peer_authentications, byKey<model::PeerAuthentication>);
    case v1::KIND_HTTP_ROUTE:
      return f(&S::routes, byKey<model::HttpRoute>);
    case v1::KIND_POD_INDEX:
      return f(&S::pod_index, byUid);
    case v1::KIND_RATE_LIMIT_POLICY:
      return f(&S::rate_limits, byKey<model::RateLimitPolicy>);
    case v1::KIND_REQUEST_AUTHENTICATION:
      return f(&S::request_authentications, byKey<model::RequestAuthentication>);
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("resource ", id.second, " has unknown kind ", static_cast<int>(id.first)));
  }
}

absl::Status decodeOne(const ResourceKey& id, const std::string& text, model::NodeSnapshot& out) {
  return withList(id, [&](auto list, auto) { return decodeInto(id, text, out.*list); });
}

// Where the item named `key` is or belongs in `list`, which is in key order (as materialize
// builds it from the ordered resources).
template <typename T, typename KeyOf>
typename std::vector<T>::iterator findSorted(std::vector<T>& list, const std::string& key,
                                             KeyOf key_of) {
  return std::lower_bound(list.begin(), list.end(), key,
                          [&](const T& item, const std::string& k) { return key_of(item) < k; });
}

void setHeader(const IndexedSnapshot& s, const std::string& epoch, v1::WatchResponse& r) {
  r.set_epoch(epoch);
  r.set_version(s.version);
  r.set_node(s.node);
}

}  // namespace

std::string kindName(v1::Kind kind) {
  switch (kind) {
    case v1::KIND_WORKLOAD:
      return "Workload";
    case v1::KIND_SERVICE:
      return "Service";
    case v1::KIND_ENDPOINTS:
      return "ServiceEndpoints";
    case v1::KIND_AUTHORIZATION_POLICY:
      return "AuthorizationPolicy";
    case v1::KIND_PEER_AUTHENTICATION:
      return "PeerAuthentication";
    case v1::KIND_HTTP_ROUTE:
      return "HTTPRoute";
    case v1::KIND_POD_INDEX:
      return "PodIndexEntry";
    case v1::KIND_RATE_LIMIT_POLICY:
      return "RateLimitPolicy";
    case v1::KIND_REQUEST_AUTHENTICATION:
      return "RequestAuthentication";
    default:
      return absl::StrCat("Kind(", static_cast<int>(kind), ")");
  }
}

IndexedSnapshot indexSnapshot(const model::NodeSnapshot& snapshot) {
  IndexedSnapshot out;
  out.version = snapshot.version;
  out.node = snapshot.node;
  out.trust_domain = snapshot.trust_domain;
  out.trust_bundle_pem = snapshot.trust_bundle_pem;
  auto key = [](const auto& item) { return byKey(item); };
  indexAll(v1::KIND_WORKLOAD, snapshot.workloads, byUid, out.resources);
  indexAll(v1::KIND_POD_INDEX, snapshot.pod_index, byUid, out.resources);
  indexAll(v1::KIND_SERVICE, snapshot.services, key, out.resources);
  indexAll(v1::KIND_ENDPOINTS, snapshot.endpoints, byService, out.resources);
  indexAll(v1::KIND_AUTHORIZATION_POLICY, snapshot.policies, key, out.resources);
  indexAll(v1::KIND_PEER_AUTHENTICATION, snapshot.peer_authentications, key, out.resources);
  indexAll(v1::KIND_HTTP_ROUTE, snapshot.routes, key, out.resources);
  indexAll(v1::KIND_RATE_LIMIT_POLICY, snapshot.rate_limits, key, out.resources);
  indexAll(v1::KIND_REQUEST_AUTHENTICATION, snapshot.request_authentications, key, out.resources);
  return out;
}

absl::StatusOr<model::NodeSnapshot> materialize(const IndexedSnapshot& snapshot) {
  model::NodeSnapshot out;
  out.version = snapshot.version;
  out.node = snapshot.node;
  out.trust_domain = snapshot.trust_domain;
  out.trust_bundle_pem = snapshot.trust_bundle_pem;
  for (const auto& [id, text] : snapshot.resources) {
    if (absl::Status s = decodeOne(id, text, out); !s.ok()) {
      return s;
    }
  }
  return out;
}

v1::WatchResponse fullResponse(const IndexedSnapshot& snapshot, const std::string& epoch) {
  v1::WatchResponse r;
  setHeader(snapshot, epoch, r);
  r.set_full(true);
  r.set_trust_domain(snapshot.trust_domain);
  r.set_trust_bundle_pem(snapshot.trust_bundle_pem);
  for (const auto& [id, text] : snapshot.resources) {
    v1::Resource* res = r.add_upserts();
    res->mutable_id()->set_kind(id.first);
    res->mutable_id()->set_key(id.second);
    res->set_json(text);
  }
  return r;
}

v1::WatchResponse deltaResponse(const IndexedSnapshot& from, const IndexedSnapshot& to,
                                const std::string& epoch) {
  v1::WatchResponse r;
  setHeader(to, epoch, r);
  r.set_full(false);
  r.set_base_version(from.version);
  if (from.trust_domain != to.trust_domain) {
    r.set_trust_domain(to.trust_domain);
  }
  if (from.trust_bundle_pem != to.trust_bundle_pem) {
    r.set_trust_bundle_pem(to.trust_bundle_pem);
  }
  // Both maps are ordered by key: one merge pass.
  auto a = from.resources.begin();
  auto b = to.resources.begin();
  while (a != from.resources.end() || b != to.resources.end()) {
    if (b == to.resources.end() || (a != from.resources.end() && a->first < b->first)) {
      v1::ResourceId* gone = r.add_removals();
      gone->set_kind(a->first.first);
      gone->set_key(a->first.second);
      ++a;
      continue;
    }
    bool same_key = a != from.resources.end() && a->first == b->first;
    if (!same_key || a->second != b->second) {
      v1::Resource* res = r.add_upserts();
      res->mutable_id()->set_kind(b->first.first);
      res->mutable_id()->set_key(b->first.second);
      res->set_json(b->second);
    }
    if (same_key) {
      ++a;
    }
    ++b;
  }
  return r;
}

namespace {

// Moves the decoded upserts of `response` (in `decoded`, in the order decodeOne filled it) into
// `snapshot`, replacing or inserting each at its key's place, after removing the removals (one of
// an unknown kind names nothing held).
void patchMaterialized(const v1::WatchResponse& response, model::NodeSnapshot& decoded,
                       model::NodeSnapshot& snapshot) {
  for (const v1::ResourceId& gone : response.removals()) {
    const ResourceKey id{gone.kind(), gone.key()};
    withList(id, [&](auto member, auto key_of) {
      auto& list = snapshot.*member;
      auto it = findSorted(list, id.second, key_of);
      if (it != list.end() && key_of(*it) == id.second) {
        list.erase(it);
      }
      return absl::OkStatus();
    }).IgnoreError();
  }
  std::map<v1::Kind, size_t> taken;  // per kind, how many decoded items were moved already
  for (const v1::Resource& res : response.upserts()) {
    const ResourceKey id{res.id().kind(), res.id().key()};
    // Every upsert decoded, so its kind is known.
    withList(id, [&](auto member, auto key_of) {
      auto& list = snapshot.*member;
      auto item = std::move((decoded.*member)[taken[id.first]++]);
      auto it = findSorted(list, id.second, key_of);
      if (it != list.end() && key_of(*it) == id.second) {
        *it = std::move(item);
      } else {
        list.insert(it, std::move(item));
      }
      return absl::OkStatus();
    }).IgnoreError();
  }
}

}  // namespace

absl::Status applyResponse(const v1::WatchResponse& response, IndexedSnapshot& state,
                           model::NodeSnapshot* materialized) {
  if (response.full()) {
    IndexedSnapshot next;
    next.trust_domain = response.trust_domain();
    next.trust_bundle_pem = response.trust_bundle_pem();
    next.version = response.version();
    next.node = response.node();
    for (const v1::Resource& res : response.upserts()) {
      next.resources[{res.id().kind(), res.id().key()}] = res.json();
    }
    absl::StatusOr<model::NodeSnapshot> decoded = materialize(next);
    if (!decoded.ok()) {
      return decoded.status();
    }
    state = std::move(next);
    if (materialized != nullptr) {
      *materialized = *std::move(decoded);
    }
    return absl::OkStatus();
  }
  if (response.base_version() != state.version) {
    return absl::FailedPreconditionError(
        absl::StrCat("delta is based on version ", response.base_version(),
                     " but this agent holds version ", state.version));
  }
  if (!state.node.empty() && response.node() != state.node) {
    return absl::FailedPreconditionError(absl::StrCat("delta is for node '", response.node(),
                                                      "' but state is for '", state.node, "'"));
  }
  // Decode everything first: nothing changes unless all of it is good.
  model::NodeSnapshot decoded;
  for (const v1::Resource& res : response.upserts()) {
    if (absl::Status s = decodeOne({res.id().kind(), res.id().key()}, res.json(), decoded);
        !s.ok()) {
      return s;
    }
  }
  if (response.has_trust_domain()) {
    state.trust_domain = response.trust_domain();
  }
  if (response.has_trust_bundle_pem()) {
    state.trust_bundle_pem = response.trust_bundle_pem();
  }
  state.version = response.version();
  state.node = response.node();
  for (const v1::ResourceId& id : response.removals()) {
    state.resources.erase({id.kind(), id.key()});
  }
  for (const v1::Resource& res : response.upserts()) {
    state.resources[{res.id().kind(), res.id().key()}] = res.json();
  }
  if (materialized == nullptr) {
    return absl::OkStatus();
  }
  materialized->version = state.version;
  materialized->node = state.node;
  materialized->trust_domain = state.trust_domain;
  materialized->trust_bundle_pem = state.trust_bundle_pem;
  patchMaterialized(response, decoded, *materialized);
  return absl::OkStatus();
}

}  // namespace ferry::distribution
