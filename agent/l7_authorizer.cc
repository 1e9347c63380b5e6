// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/l7_authorizer.h"

#include <array>
#include <cctype>
#include <map>
#include <optional>
#include <string_view>
#include <utility>

#include "agent/inbound.h"
#include "agent/log.h"
#include "policy/engine.h"

namespace ferry::agent {
namespace {

constexpr std::array<std::string_view, 6> kHttpNames = {"http",     "http2", "grpc",
                                                        "grpc-web", "h2c",   "ws"};

bool httpProtocolName(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  constexpr std::string_view kK8sPrefix = "kubernetes.io/";
  if (lower.starts_with(kK8sPrefix)) {
    lower.erase(0, kK8sPrefix.size());
  }
  for (std::string_view p : kHttpNames) {
    if (lower == p) {
      return true;
    }
  }
  return lower == "wss" || lower == "https-h2c";
}

bool httpPortName(std::string_view name) {
  if (httpProtocolName(name)) {
    return true;
  }
  size_t dash = name.find('-');
  return dash != std::string_view::npos && httpProtocolName(name.substr(0, dash));
}

bool selects(const model::Labels& selector, const model::Workload& w) {
  if (selector.empty()) {
    return false;  // a Service without selector has no pods of its own
  }
  for (const auto& [k, v] : selector) {
    auto it = w.labels.find(k);
    if (it == w.labels.end() || it->second != v) {
      return false;
    }
  }
  return true;
}

// Per worker thread: the compiled policies of the last WorkloadState seen, and the rule sets of
// the workloads asked about since. Rebuilt when the state object changes.
struct PolicyCache {
  std::shared_ptr<const WorkloadState> state;
  std::shared_ptr<const policy::PolicySnapshot> snapshot;
  std::map<std::string, policy::WorkloadPolicies> by_uid;
};

const policy::WorkloadPolicies& policiesFor(const std::shared_ptr<const WorkloadState>& state,
                                            const model::Workload& w) {
  thread_local PolicyCache cache;
  if (cache.state != state) {
    cache.state = state;
    cache.snapshot =
        policy::PolicySnapshot::build(state->snapshot().policies, state->snapshot().version);
    cache.by_uid.clear();
    for (const std::string& e : cache.snapshot->errors()) {
      LOG_WARN("policy does not compile (fails closed): ", e);
    }
  }
  auto it = cache.by_uid.find(w.uid);
  if (it == cache.by_uid.end()) {
    it = cache.by_uid.emplace(w.uid, cache.snapshot->forWorkload(w)).first;
  }
  return it->second;
}

}  // namespace

bool isHttpPort(const model::NodeSnapshot& snapshot, const model::Workload& workload,
                uint16_t port) {
  for (const model::Service& s : snapshot.services) {
    if (s.key.ns != workload.key.ns || !selects(s.selector, workload)) {
      continue;
    }
    for (const model::ServicePort& p : s.ports) {
      uint16_t target = p.target_port != 0 ? p.target_port : p.port;
      if (!p.target_port_name.empty() || target != port) {
        continue;
      }
      if (!p.app_protocol.empty() ? httpProtocolName(p.app_protocol) : httpPortName(p.name)) {
        return true;
      }
    }
  }
  return false;
}

http::Authorizer makeL7Authorizer(WorkerContext& ctx, std::shared_ptr<const LocalPod> pod,
                                  InboundPeer peer) {
  auto source_ip = policy::IpAddress::parse(peer.source_ip);
  auto destination_ip = policy::IpAddress::parse(peer.destination_ip);
  return [&ctx, pod = std::move(pod), peer = std::move(peer), source_ip,
          destination_ip](const http::RequestView& view) -> http::AuthzDecision {
    auto state = ctx.shared.workloads->current();
    model::Workload fallback;
    const model::Workload* w = &workloadOf(*state, *pod, fallback);
    policy::HttpRequest http;
    http.method = view.method;
    http.host = view.authority;
    http.path = view.path;
    http.headers.reserve(view.headers.size());
    for (const http::Header& h : view.headers) {
      http.headers.emplace_back(h.name, h.value);
    }
    policy::Request request;
    request.source_principal = peer.principal;
    request.source_ip = source_ip;
    request.destination_ip = destination_ip;
    request.destination_port = peer.destination_port;
    request.http = &http;
    policy::Decision d = policiesFor(state, *w).evaluate(request);
    http::AuthzDecision out;
    out.allow = d.allowed;
    out.reason = d.str();
    if (d.rule.policy != nullptr) {
      out.policy = d.rule.policy->key.str();
      out.rule = std::to_string(d.rule.rule);
    }
    if (d.allowed) {
      ctx.stats.inc(ctx.stats.http_requests_allowed);
    } else {
      ctx.stats.inc(ctx.stats.http_requests_denied);
      LOG_INFO("inbound HTTP ", peer.principal.empty() ? peer.source_ip : peer.principal, " -> ",
               pod->info.name, " ", std::string(view.method), " ", std::string(view.path), ": ",
               d.str());
    }
    return out;
  };
}

}  // namespace ferry::agent
