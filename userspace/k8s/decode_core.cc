// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Metadata and the core kinds: Namespace, ServiceAccount, Pod, Service, EndpointSlice.
#include <set>

#include "absl/strings/ascii.h"
#include "k8s/decoders.h"
#include "net/ip.h"
#include "policy/text.h"

namespace ferry::k8s::internal {
namespace {

bool isLabelNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

// Kubernetes "qualified name" rules for label keys and values.
void checkLabelPart(const Field& f, std::string_view part, std::string_view what,
                    bool allow_empty) {
  if (part.empty()) {
    if (!allow_empty) {
      f.fail(text::cat(what, " must not be empty"));
    }
    return;
  }
  if (part.size() > 63) {
    f.fail(text::cat(what, " '", part, "' is longer than 63 characters"));
  }
  for (char c : part) {
    if (!isLabelNameChar(c)) {
      f.fail(text::cat(what, " '", part, "' may only hold letters, digits, '-', '_' and '.'"));
    }
  }
  if (!absl::ascii_isalnum(static_cast<unsigned char>(part.front())) ||
      !absl::ascii_isalnum(static_cast<unsigned char>(part.back()))) {
    f.fail(text::cat(what, " '", part, "' must start and end with a letter or digit"));
  }
}

model::Labels decodeLabels(const Field& f) {
  model::Labels labels = f.strMap();
  for (const auto& [key, value] : labels) {
    auto slash = key.find('/');
    std::string_view name = key;
    if (slash != std::string::npos) {
      checkDnsSubdomain(f, key.substr(0, slash));
      name = std::string_view(key).substr(slash + 1);
    }
    checkLabelPart(f, name, "label key", false);
    checkLabelPart(f, value, text::cat("value of label '", key, "'"), true);
  }
  return labels;
}

std::string decodeIpField(const Field& f) {
  std::string ip = f.str();
  checkIp(f, ip);
  return ip;
}

// The owning workload's name for metrics: a ReplicaSet's pods are named after the Deployment,
// found by removing the pod-template-hash suffix the Deployment controller adds.
std::string workloadName(const Meta& meta) {
  const OwnerReference* owner = meta.owners.empty() ? nullptr : &meta.owners.front();
  for (const auto& o : meta.owners) {
    if (o.controller) {
      owner = &o;
      break;
    }
  }
  if (owner == nullptr) {
    return meta.key.name;
  }
  if (owner->kind == "ReplicaSet") {
    auto hash = meta.labels.find("pod-template-hash");
    if (hash != meta.labels.end() && (owner->name).ends_with("-" + hash->second)) {
      return owner->name.substr(0, owner->name.size() - hash->second.size() - 1);
    }
  }
  return owner->name;
}

}  // namespace

void checkDnsLabel(const Field& f, const std::string& value) {
  if (value.empty() || value.size() > 63) {
    f.fail(text::cat("'", value, "' must be 1 to 63 characters"));
  }
  for (char c : value) {
    if (!(absl::ascii_islower(static_cast<unsigned char>(c)) ||
          absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-')) {
      f.fail(text::cat("'", value, "' is not a DNS label (lower-case letters, digits and '-')"));
    }
  }
  if (value.front() == '-' || value.back() == '-') {
    f.fail(text::cat("'", value, "' must start and end with a letter or digit"));
  }
}

void checkDnsSubdomain(const Field& f, const std::string& value) {
  if (value.empty() || value.size() > 253) {
    f.fail(text::cat("'", value, "' must be 1 to 253 characters"));
  }
  size_t start = 0;
  while (true) {
    size_t dot = value.find('.', start);
    std::string label =
        value.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (label.empty()) {
      f.fail(text::cat("'", value, "' is not a DNS subdomain (empty label)"));
    }
    checkDnsLabel(f, label);
    if (dot == std::string::npos) {
      break;
    }
    start = dot + 1;
  }
}

void checkIp(const Field& f, const std::string& value) {
  if (!net::IpAddress::parse(value)) {
    f.fail(text::cat("'", value, "' is not an IP address"));
  }
}

uint16_t decodePort(const Field& f) {
  if (!f.present()) {
    f.fail("required field is missing");
  }
  return static_cast<uint16_t>(f.integer(1, 65535));
}

std::optional<model::Labels> decodeWorkloadSelector(const Field& f) {
  if (!f.present()) {
    return std::nullopt;
  }
  f.allowOnly({"matchLabels"});
  return decodeLabels(f["matchLabels"]);
}

Meta decodeMeta(const Field& metadata, bool namespaced, const DecodeOptions& options) {
  metadata.allowOnly({"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
                      "generation", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
                      "finalizers", "managedFields"});
  Meta meta;
  Field name = metadata["name"];
  meta.key.name = name.nonEmptyStr();
  if (namespaced) {
    checkDnsSubdomain(name, meta.key.name);
    Field ns = metadata["namespace"];
    meta.key.ns = ns.present() ? ns.nonEmptyStr() : options.default_namespace;
    checkDnsLabel(ns, meta.key.ns);
  } else {
    checkDnsLabel(name, meta.key.name);
    if (metadata["namespace"].present() && !metadata["namespace"].str().empty()) {
      metadata["namespace"].fail("a cluster-scoped object has no namespace");
    }
  }
  meta.labels = decodeLabels(metadata["labels"]);
  meta.annotations = metadata["annotations"].strMap();
  meta.uid = metadata["uid"].strOr("");
  meta.resource_version = metadata["resourceVersion"].strOr("");
  for (const auto& owner : metadata["ownerReferences"].list()) {
    owner.allowOnly({"apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion"});
    OwnerReference ref;
    ref.kind = owner["kind"].nonEmptyStr();
    ref.name = owner["name"].nonEmptyStr();
    ref.controller = owner["controller"].present() && owner["controller"].boolean();
    meta.owners.push_back(std::move(ref));
  }
  return meta;
}

model::Namespace decodeNamespace(const Field& root, const Meta& meta) {
  model::Namespace ns;
  ns.name = meta.key.name;
  ns.labels = meta.labels;
  auto it = meta.labels.find(std::string(kMeshLabel));
  ns.mesh_enabled = it != meta.labels.end() && it->second == kMeshEnabled;
  return ns;
}

model::ServiceAccount decodeServiceAccount(const Field& root, const Meta& meta) {
  return model::ServiceAccount{meta.key};
}

model::Workload decodePod(const Field& root, const Meta& meta) {
  model::Workload w;
  w.key = meta.key;
  w.uid = meta.uid;
  w.labels = meta.labels;
  w.workload_name = workloadName(meta);
  Field spec = root["spec"];
  bool host_network = false;
  if (spec.present()) {
    spec.expectMap();
    // serviceAccount is the deprecated alias the API server still fills in.
    Field sa =
        spec["serviceAccountName"].present() ? spec["serviceAccountName"] : spec["serviceAccount"];
    if (sa.present()) {
      w.service_account = sa.nonEmptyStr();
      checkDnsSubdomain(sa, w.service_account);
    }
    w.node = spec["nodeName"].strOr("");
    host_network = spec["hostNetwork"].present() && spec["hostNetwork"].boolean();
  }
  Field status = root["status"];
  if (status.present()) {
    status.expectMap();
    for (const auto& entry : status["podIPs"].list()) {
      entry.expectMap();
      w.ips.push_back(decodeIpField(entry["ip"]));
    }
    if (w.ips.empty() && status["podIP"].present() && !status["podIP"].str().empty()) {
      w.ips.push_back(decodeIpField(status["podIP"]));
    }
  }
  auto opt_out = meta.labels.find(std::string(kMeshLabel));
  // hostNetwork pods share the node's namespace: there is nothing of their own to capture.
  w.mesh_enabled =
      !host_network && !(opt_out != meta.labels.end() && opt_out->second == kMeshDisabled);
  return w;
}

model::Service decodeService(const Field& root, const Meta& meta) {
  model::Service svc;
  svc.key = meta.key;
  svc.annotations = meta.annotations;
  Field spec = root["spec"];
  if (!spec.present()) {
    return svc;
  }
  spec.expectMap();
  std::vector<std::string> ips = spec["clusterIPs"].strList();
  if (ips.empty() && spec["clusterIP"].present()) {
    ips.push_back(spec["clusterIP"].str());
  }
  for (size_t i = 0; i < ips.size(); ++i) {
    if (ips[i] == "None" || ips[i].empty()) {
      continue;  // headless
    }
    checkIp(spec["clusterIPs"].present() ? spec["clusterIPs"].list()[i] : spec["clusterIP"],
            ips[i]);
    svc.vips.push_back(ips[i]);
  }
  std::set<std::string> names;
  for (const auto& p : spec["ports"].list()) {
    p.allowOnly({"name", "protocol", "appProtocol", "port", "targetPort", "nodePort"});
    model::ServicePort port;
    port.name = p["name"].strOr("");
    if (!names.insert(port.name).second) {
      p["name"].fail(text::cat("duplicate port name '", port.name, "'"));
    }
    port.port = decodePort(p["port"]);
    port.protocol = p["protocol"].strOr("TCP");
    if (port.protocol != "TCP" && port.protocol != "UDP" && port.protocol != "SCTP") {
      p["protocol"].fail(text::cat("'", port.protocol, "' is not TCP, UDP or SCTP"));
    }
    port.app_protocol = p["appProtocol"].strOr("");
    Field target = p["targetPort"];
    if (target.present()) {
      if (!target.node().IsScalar()) {
        target.fail("expected a port number or name");
      }
      const std::string& t = target.node().Scalar();
      if (target.node().Tag() != "!" && !t.empty() &&
          t.find_first_not_of("0123456789") == std::string::npos) {
        port.target_port = decodePort(target);
      } else {
        checkDnsLabel(target, t);
        if (t.size() > 15) {
          target.fail(text::cat("port name '", t, "' is longer than 15 characters"));
        }
        port.target_port_name = t;
      }
    }
    svc.ports.push_back(std::move(port));
  }
  svc.selector = decodeLabels(spec["selector"]);
  return svc;
}

EndpointSlice decodeEndpointSlice(const Field& root, const Meta& meta) {
  EndpointSlice slice;
  slice.key = meta.key;
  auto svc = meta.labels.find("kubernetes.io/service-name");
  if (svc != meta.labels.end()) {
    slice.service = svc->second;
  }
  Field type = root["addressType"];
  slice.address_type = type.nonEmptyStr();
  if (slice.address_type != "IPv4" && slice.address_type != "IPv6" &&
      slice.address_type != "FQDN") {
    type.fail(text::cat("'", slice.address_type, "' is not IPv4, IPv6 or FQDN"));
  }
  for (const auto& e : root["endpoints"].list()) {
    e.allowOnly({"addresses", "conditions", "hostname", "targetRef", "nodeName", "zone", "hints",
                 "deprecatedTopology"});
    model::Endpoint ep;
    ep.node = e["nodeName"].strOr("");
    ep.zone = e["zone"].strOr("");
    Field conditions = e["conditions"];
    if (conditions.present()) {
      conditions.allowOnly({"ready", "serving", "terminating"});
      // An absent `ready` means ready (discovery.k8s.io/v1).
      ep.ready = !conditions["ready"].present() || conditions["ready"].boolean();
    }
    Field target = e["targetRef"];
    if (target.present()) {
      target.expectMap();
      if (target["kind"].strOr("") == "Pod") {
        ep.workload_uid = target["uid"].strOr("");
      }
    }
    Field addresses = e["addresses"];
    if (!addresses.present()) {
      addresses.fail("required field is missing");
    }
    for (const auto& a : addresses.list()) {
      model::Endpoint copy = ep;
      copy.ip = a.str();
      if (slice.address_type != "FQDN") {
        checkIp(a, copy.ip);
        bool is_v4 = net::IpAddress::parse(copy.ip)->v4;
        if (is_v4 != (slice.address_type == "IPv4")) {
          a.fail(text::cat("'", copy.ip, "' is not an ", slice.address_type, " address"));
        }
      }
      slice.endpoints.push_back(std::move(copy));
    }
  }
  for (const auto& p : root["ports"].list()) {
    p.allowOnly({"name", "port", "protocol", "appProtocol"});
    std::string name = p["name"].strOr("");
    uint16_t port = p["port"].present() ? decodePort(p["port"]) : 0;
    if (!slice.named_ports.emplace(name, port).second) {
      p["name"].fail(text::cat("duplicate port name '", name, "'"));
    }
  }
  return slice;
}

}  // namespace ferry::k8s::internal

namespace ferry::k8s {

model::ServiceEndpoints mergeEndpointSlices(const model::ObjectKey& service,
                                            const std::vector<const EndpointSlice*>& slices) {
  model::ServiceEndpoints merged;
  merged.service = service;
  std::map<std::string, size_t> by_ip;
  for (const EndpointSlice* slice : slices) {
    if (slice == nullptr || slice->key.ns != service.ns || slice->service != service.name) {
      continue;
    }
    for (const auto& ep : slice->endpoints) {
      auto [it, inserted] = by_ip.emplace(ep.ip, merged.endpoints.size());
      if (inserted) {
        merged.endpoints.push_back(ep);
      } else {
        merged.endpoints[it->second].ready = merged.endpoints[it->second].ready || ep.ready;
      }
    }
    for (const auto& [name, port] : slice->named_ports) {
      merged.named_ports.emplace(name, port);
    }
  }
  return merged;
}

}  // namespace ferry::k8s
