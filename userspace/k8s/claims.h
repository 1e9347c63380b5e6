// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Values only one object may hold at a time. A Service's ClusterIPs and a mesh Pod's IPs share
// one address space: a second holder would take over the first one's traffic (the VIP, or the
// identity behind a pod address). A Pod's uid names it in EndpointSlices, so a second pod with
// the same uid would lend its identity to the first one's endpoints. The Kubernetes API server
// allocates these uniquely; a folder of manifests has no allocator, so the loader (loader.h)
// refuses an object whose claim is already taken, keeping the holder that is in force.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "k8s/object.h"

namespace ferry::k8s {

struct Claim {
  std::string key;    // "ip 10.96.0.10" (addresses in canonical form), "uid <uid>"
  std::string field;  // for messages: "spec.clusterIPs", "status.podIPs", "metadata.uid"
  std::string value;  // for messages: "10.96.0.10"
};

// The claims `object` makes. Pods outside the mesh (opted out, hostNetwork: they share the
// node's address) claim no address; every pod claims its uid.
std::vector<Claim> claimsOf(const Object& object);

// Who holds each claim.
class ClaimTable {
 public:
  // The holder of `key` other than `self`, if any.
  std::optional<ObjectRef> holderOther(const std::string& key, const ObjectRef& self) const;
  void add(const ObjectRef& holder, const std::vector<Claim>& claims);
  // Releases every claim `holder` has.
  void release(const ObjectRef& holder);
  const std::map<std::string, ObjectRef>& holders() const { return holders_; }

 private:
  std::map<std::string, ObjectRef> holders_;
};

}  // namespace ferry::k8s
