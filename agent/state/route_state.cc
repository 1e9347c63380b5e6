// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/state/route_state.h"

#include <set>

#include "agent/io/sockets.h"
#include "log/log.h"

namespace ferry::agent {

std::shared_ptr<BackendCluster> RoutingView::cluster(const model::ObjectKey& service,
                                                     uint16_t port) const {
  auto it = clusters.find({service, port});
  return it == clusters.end() ? nullptr : it->second;
}

routing::RouteStats* RoutingView::routeStats(const std::string& route) const {
  auto it = stats.find(route);
  return it == stats.end() ? nullptr : it->second;
}

Destination endpointDestination(const WorkloadState& state, const routing::EndpointRef& e) {
  Destination d;
  auto addr = SocketAddress::parse(e.ip, e.port);
  d.ip = addr.ok() ? addr->ip() : e.ip;
  d.port = e.port;
  d.workload = e.workload_uid.empty() ? nullptr : state.workloadByUid(e.workload_uid);
  if (d.workload == nullptr) {
    d.workload = state.workloadByIp(d.ip);
  }
  return d;
}

std::vector<routing::EndpointRef> clusterEndpoints(const model::NodeSnapshot& snapshot,
                                                   const model::ObjectKey& service, uint16_t port) {
  std::vector<routing::EndpointRef> v4, v6;
  const model::Service* svc = nullptr;
  for (const model::Service& s : snapshot.services) {
    if (s.key == service) {
      svc = &s;
    }
  }
  const model::ServiceEndpoints* eps = nullptr;
  for (const model::ServiceEndpoints& e : snapshot.endpoints) {
    if (e.service == service) {
      eps = &e;
    }
  }
  if (svc == nullptr || eps == nullptr) {
    return {};
  }
  const model::ServicePort* sp = nullptr;
  for (const model::ServicePort& p : svc->ports) {
    if (p.port == port && (p.protocol.empty() || p.protocol == "TCP")) {
      sp = &p;
    }
  }
  if (sp == nullptr) {
    return {};
  }
  uint16_t target = sp->target_port != 0 ? sp->target_port : sp->port;
  auto named = eps->named_ports.find(sp->name);
  if (named != eps->named_ports.end() && named->second != 0) {
    target = named->second;
  } else if (!sp->target_port_name.empty()) {
    return {};  // a named targetPort the EndpointSlices do not resolve
  }
  for (const model::Endpoint& e : eps->endpoints) {
    if (!e.ready) {
      continue;
    }
    routing::EndpointRef ref{
        .ip = e.ip, .port = target, .zone = e.zone, .workload_uid = e.workload_uid};
    (e.ip.find(':') != std::string::npos ? v6 : v4).push_back(std::move(ref));
  }
  return v4.empty() ? v6 : v4;
}

routing::ClusterOptions serviceClusterOptions(const model::NodeSnapshot& snapshot,
                                              const model::ObjectKey& service,
                                              const routing::ClusterOptions& defaults,
                                              std::vector<std::string>* errors) {
  for (const model::Service& s : snapshot.services) {
    if (s.key == service) {
      routing::ServiceOptions parsed = routing::parseServiceOptions(s.annotations, defaults);
      if (errors != nullptr) {
        for (const std::string& e : parsed.errors) {
          errors->push_back("Service " + service.ns + "/" + service.name + ": " + e);
        }
      }
      return parsed.cluster;
    }
  }
  return defaults;
}

namespace {

// A backendRef without a port means "the port the request came to": one cluster per port of
// the backend Service then.
void addBackend(const model::NodeSnapshot& snap, const model::BackendRef& b,
                std::set<BackendKey>& out) {
  if (b.port != 0) {
    out.insert({b.service, b.port});
    return;
  }
  for (const model::Service& s : snap.services) {
    if (s.key == b.service) {
      for (const model::ServicePort& p : s.ports) {
        out.insert({b.service, p.port});
      }
    }
  }
}

}  // namespace

void RoutingState::update(const WorkloadState& state) {
  const model::NodeSnapshot& snap = state.snapshot();
  std::vector<std::string> errors;
  auto view = std::make_shared<RoutingView>();
  const std::shared_ptr<const RoutingView> previous = view_.load();
  view->table = routing::RouteTable::build(snap, &errors, previous->table.get());
  for (const std::string& e : errors) {
    LOG_WARN("HTTPRoute skipped: ", e);
  }
  std::set<BackendKey> backends;
  for (const model::HttpRoute& route : snap.routes) {
    for (const model::HttpRouteRule& rule : route.rules) {
      for (const model::BackendRef& b : rule.backends) {
        addBackend(snap, b, backends);
      }
      if (rule.mirror) {
        addBackend(snap, *rule.mirror, backends);
      }
    }
  }
  // The local zone: the zone of this node's workloads, for zone-aware picks.
  std::string local_zone;
  for (const model::Workload& w : snap.workloads) {
    if (w.node == snap.node && !w.zone.empty()) {
      local_zone = w.zone;
    }
  }
  routing::ClusterOptions defaults;
  defaults.local_zone = local_zone;
  if (base_ejection_override_) {
    defaults.base_ejection = *base_ejection_override_;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const BackendKey& key : backends) {
    auto endpoints = clusterEndpoints(snap, key.first, key.second);
    std::vector<std::string> option_errors;
    routing::ClusterOptions options =
        serviceClusterOptions(snap, key.first, defaults, &option_errors);
    logOptionErrors(snap, key.first, option_errors);
    auto it = clusters_.find(key);
    if (it != clusters_.end() && it->second->cluster.options() == options) {
      it->second->cluster.update(std::move(endpoints));
    } else {
      if (it != clusters_.end()) {
        LOG_INFO("Service ", key.first.ns, "/", key.first.name, ":", key.second,
                 ": new load balancing or limits, cluster state starts afresh");
      }
      clusters_[key] = std::make_shared<BackendCluster>(std::move(endpoints), options);
      it = clusters_.find(key);
    }
    view->clusters.emplace(key, it->second);
  }
  for (const model::HttpRoute& route : snap.routes) {
    std::string name = route.key.ns + "/" + route.key.name;
    view->stats.emplace(name, &stats_.get(name));
  }
  view_.store(std::move(view));
}

// Once per change of a Service's annotations, not on every snapshot.
void RoutingState::logOptionErrors(const model::NodeSnapshot& snap, const model::ObjectKey& service,
                                   const std::vector<std::string>& errors) {
  const model::Labels* annotations = nullptr;
  for (const model::Service& s : snap.services) {
    if (s.key == service) {
      annotations = &s.annotations;
    }
  }
  if (annotations == nullptr) {
    return;
  }
  auto [it, fresh] = reported_.try_emplace(service, *annotations);
  if (!fresh && it->second == *annotations) {
    return;
  }
  it->second = *annotations;
  for (const std::string& e : errors) {
    LOG_WARN(e);
  }
}

bool RoutingState::hasRoutes(const model::ObjectKey& service, uint16_t port) const {
  auto view = current();
  return view->table != nullptr && view->table->hasRoutes(service, port);
}

}  // namespace ferry::agent

namespace ferry::agent {

std::vector<metrics::Sample> routeSamples(const RoutingState& routing) {
  std::vector<metrics::Sample> out;
  for (const auto& [route, v] : routing.allStats()) {
    const size_t slash = route.find('/');
    std::vector<std::pair<std::string, std::string>> labels = {
        {"route", slash == std::string::npos ? route : route.substr(slash + 1)},
        {"namespace", slash == std::string::npos ? "" : route.substr(0, slash)}};
    auto add = [&](const char* name, const char* help, uint64_t value) {
      out.push_back(metrics::Sample{.name = name,
                                    .help = help,
                                    .counter = true,
                                    .labels = labels,
                                    .value = static_cast<double>(value)});
    };
    add("ferry_route_requests_total", "Requests matched to an HTTPRoute by this agent", v.requests);
    add("ferry_route_retries_total", "Retries sent for requests of an HTTPRoute", v.retries);
    add("ferry_route_timeouts_total", "Requests or tries of an HTTPRoute that timed out",
        v.timeouts);
    add("ferry_route_ejections_total",
        "Endpoints ejected by outlier detection after a request of an HTTPRoute", v.ejections);
    add("ferry_route_overflows_total", "Requests of an HTTPRoute refused by a circuit breaker",
        v.overflows);
    add("ferry_route_faults_injected_total", "Fault injection (delay or abort) applied",
        v.faults_injected);
    add("ferry_route_mirrors_total",
        "Copies of requests of an HTTPRoute sent to its RequestMirror backend", v.mirrors);
    add("ferry_route_mirror_errors_total",
        "Mirrored copies that got no whole response (mirror down, refused, reset, timed out)",
        v.mirror_errors);
    for (auto [reason, value] : {std::pair{"body_too_large", v.mirror_dropped_body},
                                 std::pair{"overload", v.mirror_dropped_overload},
                                 std::pair{"no_healthy_upstream", v.mirror_dropped_unavailable}}) {
      auto with_reason = labels;
      with_reason.emplace_back("reason", reason);
      out.push_back(metrics::Sample{
          .name = "ferry_route_mirrors_dropped_total",
          .help = "Requests chosen for mirroring whose copy was not sent, by reason",
          .counter = true,
          .labels = std::move(with_reason),
          .value = static_cast<double>(value)});
    }
  }
  return out;
}

}  // namespace ferry::agent
