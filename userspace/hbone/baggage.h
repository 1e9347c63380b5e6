// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The source workload's metadata on an HBONE CONNECT, as a W3C `baggage` header with the keys
// ztunnel uses (its src/baggage.rs), so a destination names the caller without knowing the
// source pod. Ferry adds the service account (so the destination can hold the claim against
// the peer certificate) and the pod's `app`/`version` labels (Istio's source_app/_version).
//
// A claim, not a proof: believeBaggage() accepts it only when its namespace and service
// account are the ones the verified peer certificate names.

#include <string>
#include <string_view>

#include "tls/spiffe.h"

namespace ferry::hbone {

inline constexpr char kBaggageHeader[] = "baggage";
// W3C Baggage's limit for the whole header; a longer one is ignored, not truncated.
inline constexpr size_t kMaxBaggageBytes = 8192;

struct Baggage {
  std::string cluster;          // k8s.cluster.name
  std::string ns;               // k8s.namespace.name
  std::string workload;         // k8s.<kind>.name
  std::string workload_kind;    // "deployment", "pod", "job", "cronjob", ... (encode only)
  std::string service_account;  // k8s.serviceaccount.name
  std::string service;          // service.name: Istio's canonical service
  std::string revision;         // service.version: Istio's canonical revision
  std::string app;              // k8s.pod.label.app
  std::string version;          // k8s.pod.label.version

  bool empty() const;
  bool operator==(const Baggage&) const = default;
};

// "k8s.cluster.name=Kubernetes,k8s.namespace.name=default,..."; empty fields are left out and
// values are percent-encoded where W3C Baggage requires it.
std::string encodeBaggage(const Baggage& b);
// Parses one header value, or several joined with ','. Unknown keys, properties (";...") and
// malformed members are skipped; an empty value counts as absent. Never fails.
Baggage decodeBaggage(std::string_view header);

// Whether `b` may be believed for a peer whose certificate proved `peer`: its namespace and
// service account are present and equal the certificate's. On false, `why` says which differs.
bool believeBaggage(const Baggage& b, const tls::SpiffeId& peer, std::string* why = nullptr);

}  // namespace ferry::hbone
