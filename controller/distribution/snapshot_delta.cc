// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/distribution/snapshot_delta.h"

#include "absl/strings/str_cat.h"
#include "controller/distribution/model_json.h"

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

absl::Status decodeOne(const ResourceKey& id, const std::string& text, model::NodeSnapshot& out) {
  switch (id.first) {
    case v1::KIND_WORKLOAD:
      return decodeInto(id, text, out.workloads);
    case v1::KIND_SERVICE:
      return decodeInto(id, text, out.services);
    case v1::KIND_ENDPOINTS:
      return decodeInto(id, text, out.endpoints);
    case v1::KIND_AUTHORIZATION_POLICY:
      return decodeInto(id, text, out.policies);
    case v1::KIND_PEER_AUTHENTICATION:
      return decodeInto(id, text, out.peer_authentications);
    case v1::KIND_HTTP_ROUTE:
      return decodeInto(id, text, out.routes);
    case v1::KIND_POD_INDEX:
      return decodeInto(id, text, out.pod_index);
    case v1::KIND_RATE_LIMIT_POLICY:
      return decodeInto(id, text, out.rate_limits);
    case v1::KIND_REQUEST_AUTHENTICATION:
      return decodeInto(id, text, out.request_authentications);
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("resource ", id.second, " has unknown kind ", static_cast<int>(id.first)));
  }
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
  auto byKey = [](const auto& item) { return item.key.str(); };
  auto byUid = [](const model::Workload& w) { return w.uid.empty() ? w.key.str() : w.uid; };
  indexAll(v1::KIND_WORKLOAD, snapshot.workloads, byUid, out.resources);
  indexAll(v1::KIND_POD_INDEX, snapshot.pod_index, byUid, out.resources);
  indexAll(v1::KIND_SERVICE, snapshot.services, byKey, out.resources);
  indexAll(
      v1::KIND_ENDPOINTS, snapshot.endpoints,
      [](const model::ServiceEndpoints& e) { return e.service.str(); }, out.resources);
  indexAll(v1::KIND_AUTHORIZATION_POLICY, snapshot.policies, byKey, out.resources);
  indexAll(v1::KIND_PEER_AUTHENTICATION, snapshot.peer_authentications, byKey, out.resources);
  indexAll(v1::KIND_HTTP_ROUTE, snapshot.routes, byKey, out.resources);
  indexAll(v1::KIND_RATE_LIMIT_POLICY, snapshot.rate_limits, byKey, out.resources);
  indexAll(v1::KIND_REQUEST_AUTHENTICATION, snapshot.request_authentications, byKey, out.resources);
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

absl::Status applyResponse(const v1::WatchResponse& response, IndexedSnapshot& state) {
  IndexedSnapshot next;
  if (response.full()) {
    next.trust_domain = response.trust_domain();
    next.trust_bundle_pem = response.trust_bundle_pem();
  } else {
    if (response.base_version() != state.version) {
      return absl::FailedPreconditionError(
          absl::StrCat("delta is based on version ", response.base_version(),
                       " but this agent holds version ", state.version));
    }
    if (!state.node.empty() && response.node() != state.node) {
      return absl::FailedPreconditionError(absl::StrCat("delta is for node '", response.node(),
                                                        "' but state is for '", state.node, "'"));
    }
    next = state;
    if (response.has_trust_domain()) {
      next.trust_domain = response.trust_domain();
    }
    if (response.has_trust_bundle_pem()) {
      next.trust_bundle_pem = response.trust_bundle_pem();
    }
  }
  next.version = response.version();
  next.node = response.node();
  for (const v1::ResourceId& id : response.removals()) {
    next.resources.erase({id.kind(), id.key()});
  }
  model::NodeSnapshot scratch;
  for (const v1::Resource& res : response.upserts()) {
    ResourceKey id{res.id().kind(), res.id().key()};
    if (absl::Status s = decodeOne(id, res.json(), scratch); !s.ok()) {
      return s;
    }
    next.resources[id] = res.json();
  }
  state = std::move(next);
  return absl::OkStatus();
}

}  // namespace ferry::distribution
