// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/store.h"
#include "log/log.h"

#include <mutex>

namespace ferry::controller {
namespace {

constexpr size_t kRecentRejections = 32;
// Policy changes remembered for changesSince: a view further behind than this is rebuilt.
constexpr size_t kPolicyChangeLog = 4096;

bool isPolicyKind(k8s::Kind kind) {
  return kind == k8s::Kind::kAuthorizationPolicy || kind == k8s::Kind::kPeerAuthentication ||
         kind == k8s::Kind::kRateLimitPolicy || kind == k8s::Kind::kRequestAuthentication;
}

}  // namespace

StateStore::StateStore(StoreOptions options) : options_(std::move(options)) {}

void StateStore::indexLocked(const k8s::ObjectRef& ref, const k8s::Object& object, bool add) {
  if (const auto* w = std::get_if<model::Workload>(&object)) {
    if (add) {
      pods_by_node_[w->node].insert(w->key);
      if (!w->uid.empty()) {
        pod_by_uid_[w->uid] = w->key;
      }
      for (const auto& ip : w->ips) {
        pod_by_ip_[ip] = w->key;
      }
      return;
    }
    auto n = pods_by_node_.find(w->node);
    if (n != pods_by_node_.end()) {
      n->second.erase(w->key);
      if (n->second.empty()) {
        pods_by_node_.erase(n);
      }
    }
    if (auto u = pod_by_uid_.find(w->uid); u != pod_by_uid_.end() && u->second == w->key) {
      pod_by_uid_.erase(u);
    }
    for (const auto& ip : w->ips) {
      if (auto i = pod_by_ip_.find(ip); i != pod_by_ip_.end() && i->second == w->key) {
        pod_by_ip_.erase(i);
      }
    }
  } else if (const auto* s = std::get_if<k8s::EndpointSlice>(&object)) {
    const model::ObjectKey svc{s->key.ns, s->service};
    if (add) {
      slices_by_service_[svc].insert(s->key);
      return;
    }
    auto it = slices_by_service_.find(svc);
    if (it != slices_by_service_.end()) {
      it->second.erase(s->key);
      if (it->second.empty()) {
        slices_by_service_.erase(it);
      }
    }
  }
}

void StateStore::upsertLocked(k8s::Decoded object) {
  if (const auto* p = std::get_if<model::AuthorizationPolicy>(&object.object);
      p != nullptr && !p->refused.empty()) {
    LOG_WARN(object.ref.str(),
             " fails closed: the workloads it selects deny everything until it is fixed (",
             p->refused, ")");
  }
  if (const auto* p = std::get_if<model::RateLimitPolicy>(&object.object);
      p != nullptr && !p->refused.empty()) {
    LOG_WARN(object.ref.str(), " fails closed: its target is limited to zero until it is fixed (",
             p->refused, ")");
  }
  auto it = objects_.find(object.ref);
  if (it != objects_.end()) {
    indexLocked(it->first, it->second, false);
    it->second = std::move(object.object);
  } else {
    it = objects_.emplace(object.ref, std::move(object.object)).first;
  }
  indexLocked(it->first, it->second, true);
  ++stats_.applied;
}

void StateStore::removeLocked(const k8s::ObjectRef& ref) {
  auto it = objects_.find(ref);
  if (it == objects_.end()) {
    return;
  }
  indexLocked(it->first, it->second, false);
  objects_.erase(it);
  ++stats_.applied;
}

void StateStore::logChangeLocked(uint64_t v, const k8s::ObjectRef* ref) {
  if (ref == nullptr || !isPolicyKind(ref->kind)) {
    rebuild_before_ = v;
    policy_changes_.clear();
    return;
  }
  policy_changes_.emplace_back(v, *ref);
  if (policy_changes_.size() > kPolicyChangeLog) {
    rebuild_before_ = policy_changes_.front().first;
    policy_changes_.pop_front();
  }
}

void StateStore::upsert(k8s::Decoded object) {
  uint64_t v;
  {
    std::unique_lock lock(mu_);
    const k8s::ObjectRef ref = object.ref;
    upsertLocked(std::move(object));
    v = ++version_;
    logChangeLocked(v, &ref);
  }
  notify(v);
}

void StateStore::remove(const k8s::ObjectRef& ref) {
  uint64_t v;
  {
    std::unique_lock lock(mu_);
    if (objects_.find(ref) == objects_.end()) {
      return;  // deleting what we never had (e.g. it was refused) changes nothing
    }
    removeLocked(ref);
    v = ++version_;
    logChangeLocked(v, &ref);
  }
  notify(v);
}

void StateStore::replace(const std::set<k8s::Kind>& kinds, std::vector<k8s::Decoded> objects,
                         const std::set<k8s::ObjectRef>& keep) {
  uint64_t v;
  {
    std::unique_lock lock(mu_);
    std::set<k8s::ObjectRef> incoming;
    for (const auto& o : objects) {
      incoming.insert(o.ref);
    }
    std::vector<k8s::ObjectRef> gone;
    for (const auto& [ref, obj] : objects_) {
      if (kinds.count(ref.kind) && !incoming.count(ref) && !keep.count(ref)) {
        gone.push_back(ref);
      }
    }
    for (const auto& ref : gone) {
      removeLocked(ref);
    }
    for (auto& o : objects) {
      if (kinds.count(o.ref.kind)) {
        upsertLocked(std::move(o));
      }
    }
    ++stats_.replaces;
    v = ++version_;
    logChangeLocked(v, nullptr);
  }
  notify(v);
}

void StateStore::reject(const std::string& where, const std::string& reason) {
  ++stats_.rejected;
  LOG_WARN("refused ", where, ": ", reason);
  std::unique_lock lock(mu_);
  recent_rejections_.push_back(where + ": " + reason);
  if (recent_rejections_.size() > kRecentRejections) {
    recent_rejections_.erase(recent_rejections_.begin());
  }
}

void StateStore::setTrustBundle(std::string pem) {
  uint64_t v;
  {
    std::unique_lock lock(mu_);
    trust_bundle_pem_ = std::move(pem);
    v = ++version_;
    logChangeLocked(v, nullptr);
  }
  notify(v);
}

void StateStore::setJwks(const std::string& uri, const absl::StatusOr<std::string>& jwks) {
  uint64_t v;
  {
    std::unique_lock lock(mu_);
    FetchedJwks& entry = jwks_by_uri_[uri];
    if (jwks.ok() ? entry.jwks == *jwks && entry.error.empty()
                  : !entry.jwks.empty() || entry.error == jwks.status().message()) {
      return;  // unchanged, or a failure that keeps the last good keys
    }
    if (jwks.ok()) {
      entry = FetchedJwks{*jwks, ""};
    } else {
      entry.error = std::string(jwks.status().message());
    }
    v = ++version_;
    logChangeLocked(v, nullptr);
  }
  notify(v);
}

std::set<std::string> StateStore::jwksUris() const {
  std::shared_lock lock(mu_);
  std::set<std::string> out;
  for (const auto& [ref, obj] : objects_) {
    if (const auto* ra = std::get_if<model::RequestAuthentication>(&obj)) {
      for (const auto& rule : ra->jwt_rules) {
        if (!rule.jwks_uri.empty()) {
          out.insert(rule.jwks_uri);
        }
      }
    }
  }
  return out;
}

model::RequestAuthentication StateStore::withJwksLocked(
    const model::RequestAuthentication& ra) const {
  model::RequestAuthentication out = ra;
  for (auto& rule : out.jwt_rules) {
    if (rule.jwks_uri.empty()) {
      continue;
    }
    auto it = jwks_by_uri_.find(rule.jwks_uri);
    if (it == jwks_by_uri_.end() || it->second.jwks.empty()) {
      rule.jwks_error = it == jwks_by_uri_.end() ? "not fetched yet" : it->second.error;
    } else {
      rule.jwks = it->second.jwks;
    }
  }
  return out;
}

uint64_t StateStore::version() const {
  std::shared_lock lock(mu_);
  return version_;
}

size_t StateStore::count(k8s::Kind kind) const {
  std::shared_lock lock(mu_);
  size_t n = 0;
  for (const auto& [ref, obj] : objects_) {
    n += ref.kind == kind ? 1 : 0;
  }
  return n;
}

size_t StateStore::failingClosedPolicies() const {
  std::shared_lock lock(mu_);
  size_t n = 0;
  for (const auto& [ref, obj] : objects_) {
    const auto* p = std::get_if<model::AuthorizationPolicy>(&obj);
    n += p != nullptr && !p->refused.empty() ? 1 : 0;
  }
  return n;
}

std::vector<std::string> StateStore::recentRejections() const {
  std::shared_lock lock(mu_);
  return recent_rejections_;
}

void StateStore::subscribe(std::function<void(uint64_t)> on_change) {
  std::lock_guard<std::mutex> lock(subscribers_mu_);
  subscribers_.push_back(std::move(on_change));
}

void StateStore::notify(uint64_t version) {
  std::vector<std::function<void(uint64_t)>> subs;
  {
    std::lock_guard<std::mutex> lock(subscribers_mu_);
    subs = subscribers_;
  }
  for (const auto& s : subs) {
    s(version);
  }
}

bool StateStore::meshMemberLocked(const model::Workload& w) const {
  if (!w.mesh_enabled) {
    return false;
  }
  auto ns = objects_.find(k8s::ObjectRef{k8s::Kind::kNamespace, {"", w.key.ns}});
  return ns != objects_.end() && std::get<model::Namespace>(ns->second).mesh_enabled;
}

std::optional<model::Workload> StateStore::findWorkload(const model::ObjectKey& pod) const {
  std::shared_lock lock(mu_);
  auto it = objects_.find(k8s::ObjectRef{k8s::Kind::kPod, pod});
  if (it == objects_.end()) {
    return std::nullopt;
  }
  model::Workload w = std::get<model::Workload>(it->second);
  w.mesh_enabled = meshMemberLocked(w);
  return w;
}

}  // namespace ferry::controller
