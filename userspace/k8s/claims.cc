// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "k8s/claims.h"

#include "net/ip.h"
#include "policy/text.h"

namespace ferry::k8s {
namespace {

Claim ipClaim(const std::string& ip, std::string field) {
  auto parsed = net::IpAddress::parse(ip);
  return {text::cat("ip ", parsed ? parsed->str() : ip), std::move(field), ip};
}

}  // namespace

std::vector<Claim> claimsOf(const Object& object) {
  std::vector<Claim> out;
  if (const auto* svc = std::get_if<model::Service>(&object)) {
    for (const auto& vip : svc->vips) {
      out.push_back(ipClaim(vip, "spec.clusterIPs"));
    }
  } else if (const auto* w = std::get_if<model::Workload>(&object)) {
    // Endpoints name their pod by uid, and the pod gives the identity a peer must prove.
    if (!w->uid.empty()) {
      out.push_back({text::cat("uid ", w->uid), "metadata.uid", w->uid});
    }
    for (const auto& ip : w->mesh_enabled ? w->ips : std::vector<std::string>{}) {
      out.push_back(ipClaim(ip, "status.podIPs"));
    }
  }
  return out;
}

std::optional<ObjectRef> ClaimTable::holderOther(const std::string& key,
                                                 const ObjectRef& self) const {
  auto it = holders_.find(key);
  if (it == holders_.end() || it->second == self) {
    return std::nullopt;
  }
  return it->second;
}

void ClaimTable::add(const ObjectRef& holder, const std::vector<Claim>& claims) {
  for (const auto& c : claims) {
    holders_.emplace(c.key, holder);
  }
}

void ClaimTable::release(const ObjectRef& holder) {
  std::erase_if(holders_, [&](const auto& entry) { return entry.second == holder; });
}

}  // namespace ferry::k8s
