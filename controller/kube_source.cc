// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "controller/kube_source.h"

#include "absl/strings/str_cat.h"
#include "k8s/decode.h"

namespace ferry::controller {
namespace {

std::string metaField(const nlohmann::json& obj, const char* field) {
  auto meta = obj.find("metadata");
  if (meta == obj.end() || !meta->is_object()) {
    return "";
  }
  auto v = meta->find(field);
  return v != meta->end() && v->is_string() ? v->get<std::string>() : "";
}

}  // namespace

const kube::Resource& resourceFor(k8s::Kind kind) {
  switch (kind) {
    case k8s::Kind::kNamespace:
      return kube::kNamespaces;
    case k8s::Kind::kServiceAccount:
      return kube::kServiceAccounts;
    case k8s::Kind::kPod:
      return kube::kPods;
    case k8s::Kind::kService:
      return kube::kServices;
    case k8s::Kind::kEndpointSlice:
      return kube::kEndpointSlices;
    case k8s::Kind::kAuthorizationPolicy:
      return kube::kAuthorizationPolicies;
    case k8s::Kind::kPeerAuthentication:
      return kube::kPeerAuthentications;
    case k8s::Kind::kHttpRoute:
      return kube::kHttpRoutes;
    case k8s::Kind::kRateLimitPolicy:
      return kube::kRateLimitPolicies;
    case k8s::Kind::kRequestAuthentication:
      return kube::kRequestAuthentications;
    case k8s::Kind::kGrpcRoute:
      return kube::kGrpcRoutes;
  }
  return kube::kPods;
}

// Decodes one kind's objects into the store.
class KubeSource::Handler : public kube::InformerHandler {
 public:
  Handler(k8s::Kind kind, StateStore& store, const k8s::DecodeOptions& decode)
      : kind_(kind), store_(store), decode_(decode) {}

  void onReplace(const std::vector<nlohmann::json>& items) override {
    std::vector<k8s::Decoded> good;
    good.reserve(items.size());
    std::set<k8s::ObjectRef> refused;
    for (const auto& item : items) {
      auto d = decode(item);
      if (d.ok()) {
        good.push_back(std::move(*d));
      } else {
        refused.insert(refOf(item));
      }
    }
    store_.replace({kind_}, std::move(good), refused);
  }

  void onEvent(kube::EventType type, const nlohmann::json& object) override {
    if (type == kube::EventType::kDeleted) {
      // A deleted object need not decode: it goes either way.
      store_.remove(refOf(object));
      return;
    }
    auto d = decode(object);
    if (d.ok()) {
      store_.upsert(std::move(*d));
    }
  }

 private:
  k8s::ObjectRef refOf(const nlohmann::json& obj) const {
    return k8s::ObjectRef{kind_,
                          {kind_ == k8s::Kind::kNamespace ? "" : metaField(obj, "namespace"),
                           metaField(obj, "name")}};
  }

  absl::StatusOr<k8s::Decoded> decode(const nlohmann::json& obj) {
    // yaml-cpp reads JSON, so the decoders see exactly what the API server sent.
    auto d = k8s::decodeJsonObject(obj, decode_);
    if (d.ok() && d->ref.kind != kind_) {
      d = absl::InvalidArgumentError(absl::StrCat("expected kind ",
                                                  std::string(k8s::kindName(kind_)), ", got ",
                                                  std::string(k8s::kindName(d->ref.kind))));
    }
    if (!d.ok()) {
      std::string reason(d.status().message());
      store_.reject(refOf(obj).str(), reason);
      // A refused AuthorizationPolicy or RateLimitPolicy fails closed: its stand-in takes its
      // place.
      if (auto stand_in = standIn(obj, reason)) {
        return std::move(*stand_in);
      }
    }
    return d;
  }

  std::optional<k8s::Decoded> standIn(const nlohmann::json& obj, std::string reason) const {
    if (kind_ != k8s::Kind::kAuthorizationPolicy && kind_ != k8s::Kind::kRateLimitPolicy) {
      return std::nullopt;
    }
    try {
      return k8s::refusedStandIn(kind_, YAML::Load(obj.dump()), std::move(reason), decode_);
    } catch (const YAML::Exception&) {
      return std::nullopt;
    }
  }

  const k8s::Kind kind_;
  StateStore& store_;
  const k8s::DecodeOptions decode_;
};

KubeSource::KubeSource(const kube::Client& client, StateStore& store, KubeSourceOptions options)
    : client_(client), store_(store), options_(std::move(options)) {}

KubeSource::~KubeSource() {
  stop();
}

absl::Status KubeSource::start() {
  for (k8s::Kind kind : k8s::kAllKinds) {
    handlers_.push_back(std::make_unique<Handler>(kind, store_, options_.decode));
    auto informer = std::make_unique<kube::Informer>(client_, resourceFor(kind), *handlers_.back(),
                                                     options_.informer, options_.sleeper);
    informer->start();
    informers_[kind] = std::move(informer);
  }
  return absl::OkStatus();
}

bool KubeSource::waitForSync(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto& [kind, informer] : informers_) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (!informer->waitForSync(std::max(left, std::chrono::milliseconds(0)))) {
      return false;
    }
  }
  return !informers_.empty();
}

void KubeSource::stop() {
  for (auto& [kind, informer] : informers_) {
    informer->stop();
  }
}

std::string KubeSource::describe() const {
  return absl::StrCat("kubernetes ", client_.http().config().server);
}

const kube::Informer& KubeSource::informer(k8s::Kind kind) const {
  return *informers_.at(kind);
}

}  // namespace ferry::controller
