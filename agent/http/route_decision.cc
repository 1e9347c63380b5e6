// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/http/route_decision.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/http/http_messages.h"
#include "agent/telemetry/http_telemetry.h"
#include "http/authority.h"
#include "http/chars.h"
#include "http/path.h"

namespace ferry::agent {
namespace {

void answer(RouteDecision& d, int status, std::string body, const char* flags, bool close = false) {
  d.local.status = status;
  d.local.body = std::move(body);
  d.local.flags = flags;
  d.local.close = close;
}

// What the primary request is forwarded as (after the rule's and backend's filters).
struct Forwarded {
  std::string_view authority;
  std::string_view target;
  const http::HeaderEdits& edits;
};

// The RequestMirror copy's head, made from the received fields and what the primary is
// `forwarded` as, with the shadow authority.
void planMirror(RouteDecision& d, const http::MessageHead& head, const RoutedService& to,
                const RoutingView& view, const Forwarded& forwarded) {
  const routing::BackendTarget* mirror = d.rule->mirror();
  if (mirror == nullptr || !d.rule->shouldMirror()) {
    return;
  }
  const uint16_t port = mirror->port != 0 ? mirror->port : to.port;
  auto cluster = view.cluster(mirror->service, port);
  if (cluster == nullptr) {
    d.mirror_unavailable = true;
    return;
  }
  const std::string shadow = http::shadowAuthority(forwarded.authority);  // `fields` point into it
  std::vector<http::Header> fields;
  http::fieldsWithAuthority(head.headers, shadow, fields);
  d.mirror = MirrorCopy{
      .cluster = std::move(cluster),
      .cluster_id = absl::StrCat(mirror->service.ns, "/", mirror->service.name, ":", port),
      .request = forwardedRequestHead(head.method, fields, forwarded.target, forwarded.edits),
      .head_request = head.method == "HEAD",
      .timeout = d.rule->requestTimeout().value_or(kMirrorDefaultTimeout)};
}

}  // namespace

RouteDecision decideRoute(const http::MessageHead& head, const RoutedService& to,
                          const RoutingView& view, absl::BitGenRef rng,
                          const trace::Sampler* sampler) {
  RouteDecision d;
  d.authority = std::string(head.host);
  // A WebSocket handshake is routed like any request and becomes a tunnel to the backend it
  // picked once that answers 101 (issue 22 point 1); other upgrades and CONNECT would tunnel
  // past routing for good.
  const std::optional<std::string_view> upgrade = head.find("upgrade");
  d.websocket = head.upgrade && head.method == "GET" && upgrade &&
                http::chars::equalsIgnoreCase(*upgrade, "websocket");
  if ((head.upgrade && !d.websocket) || head.method == "CONNECT") {
    answer(d, 501, "upgrade and CONNECT are not supported on a routed service\n", "DPE", true);
    return d;
  }
  auto target = http::parseRequestTarget(head.method, head.target, http::PathOptions{});
  if (!target.ok()) {
    answer(d, 400, "bad request target\n", "DPE", true);
    return d;
  }
  // The same request-target rules as the inbound filter: the absolute-form authority wins
  // over Host, no authority at all is a 400, and Host is forwarded as the one matched.
  auto authority = http::requestAuthority(head, *target);
  if (!authority.ok()) {
    answer(d, 400, absl::StrCat(authority.status().message(), "\n"), "DPE", true);
    return d;
  }
  d.authority = *std::move(authority);
  std::vector<http::Header> fields;
  http::fieldsWithAuthority(head.headers, d.authority, fields);
  http::RequestView request;
  request.protocol =
      head.version_minor == 0 ? http::HttpProtocol::kHttp10 : http::HttpProtocol::kHttp11;
  request.method = head.method;
  request.path = target->path;
  request.query = target->query;
  request.authority = d.authority;
  request.headers = fields;
  if (sampler != nullptr) {
    // A client span of our own; without export the destination's agent starts the trace.
    d.incoming_traceparent = request.headerJoined("traceparent").value_or("");
    d.trace = forwardedTrace(d.incoming_traceparent, *sampler);
  }
  d.rule = view.table ? view.table->match(to.service, to.port, request) : nullptr;
  if (d.rule == nullptr) {
    answer(d, 404, "no route matched\n", "NR");
    return d;
  }
  d.stats = view.routeStats(d.rule->routeName());
  routing::FaultAction fault = d.rule->fault(rng);
  if (fault.abort_status) {
    d.fault_injected = true;
    answer(d, *fault.abort_status, "fault filter abort\n", "FI");
    return d;
  }
  if (fault.delay) {
    d.fault_injected = true;
    d.delay = fault.delay;
  }
  if (const routing::Redirect* redirect = d.rule->redirect()) {
    d.local.location = redirect->location({.authority = d.authority,
                                           .listener_port = to.port,
                                           .path = target->path,
                                           .query = target->query,
                                           .has_query = target->has_query});
    answer(d, redirect->status(), "", "");
    return d;
  }
  const routing::BackendTarget* backend = d.rule->pickBackend(rng);
  if (backend == nullptr) {
    answer(d, 500, "no backend with a weight\n", "NR");
    return d;
  }
  const uint16_t backend_port = backend->port != 0 ? backend->port : to.port;
  d.cluster = view.cluster(backend->service, backend_port);
  if (d.cluster == nullptr) {
    answer(d, 503, "no healthy upstream\n", "UH");
    return d;
  }
  d.cluster_id = absl::StrCat(backend->service.ns, "/", backend->service.name, ":", backend_port);
  d.backend_service = backend->service;
  d.upstream_cluster = absl::StrCat("outbound|", backend_port, "||",
                                    model::Service{.key = backend->service}.hostname());
  // Filters of the rule, then of the chosen backend: header edits both ways, URLRewrite.
  routing::ForwardEdits edits = d.rule->forwardEdits(*backend, target->path);
  std::string forwarded_target = target->forwarded();
  if (edits.path != target->path) {
    forwarded_target = edits.path;
    if (target->has_query) {
      forwarded_target.append("?").append(target->query);
    }
  }
  const std::string& host = edits.host.empty() ? d.authority : edits.host;
  if (!edits.host.empty()) {
    fields.clear();
    http::fieldsWithAuthority(head.headers, host, fields);
  }
  if (d.trace) {
    setForwardedTrace(d.incoming_traceparent, *d.trace, edits.request);
  }
  d.response_edits = std::move(edits.response);
  d.head = forwardedRequestHead(head.method, fields, forwarded_target, edits.request);
  if (d.websocket) {
    // The hop-by-hop pair that asks for the switch goes on to the backend (its agent lets a
    // WebSocket upgrade through); a handshake is not mirrored.
    d.head.insert(d.head.size() - 2, "connection: upgrade\r\nupgrade: websocket\r\n");
    return d;
  }
  planMirror(d, head, to, view,
             Forwarded{.authority = host, .target = forwarded_target, .edits = edits.request});
  return d;
}

void RouteDecision::countRequest() const {
  if (stats == nullptr) {
    return;
  }
  stats->requests.fetch_add(1, std::memory_order_relaxed);
  if (fault_injected) {
    stats->faults_injected.fetch_add(1, std::memory_order_relaxed);
  }
}

AttemptPolicy RouteDecision::attemptPolicy(std::string_view method) const {
  return {.retry = rule->retry(),
          .per_try_timeout = rule->backendRequestTimeout(),
          .overall_timeout = rule->requestTimeout(),
          .delay = delay,
          .method = method};
}

void RouteDecision::addressMirror(std::shared_ptr<const LocalPod> source,
                                  std::shared_ptr<const WorkloadState> state,
                                  std::string source_ip) {
  if (!mirror) {
    if (mirror_unavailable) {
      countMirrorDrop(stats, &routing::RouteStats::mirror_dropped_unavailable);
    }
    return;
  }
  mirror->source = std::move(source);
  mirror->state = std::move(state);
  mirror->source_ip = std::move(source_ip);
  mirror->stats = stats;
}

std::optional<MirrorCopy> RouteDecision::takeMirror(std::string_view body, bool streamed) {
  std::optional<MirrorCopy> copy = std::exchange(mirror, std::nullopt);
  if (copy && streamed) {
    countMirrorDrop(stats, &routing::RouteStats::mirror_dropped_body);
    return std::nullopt;
  }
  if (copy) {
    copy->request.append(body);
  }
  return copy;
}

}  // namespace ferry::agent
