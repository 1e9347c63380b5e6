// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/http/l7_authorizer.h"

#include <chrono>
#include <optional>
#include <string_view>
#include <utility>

#include "agent/proxy/inbound.h"
#include "agent/state/rate_limits.h"
#include "log/log.h"
#include "policy/engine.h"
#include "policy/protocol.h"
#include "policy/text.h"

namespace ferry::agent {

policy::HttpRequest toPolicyRequest(const http::RequestView& view) {
  policy::HttpRequest http;
  http.method = view.method;
  http.host = view.authority;
  http.path = view.path;
  http.headers.reserve(view.headers.size());
  for (const http::Header& h : view.headers) {
    http.headers.emplace_back(h.name, h.value);
  }
  // WebSocket is the GET it starts as; CONNECT and other upgrades open what no rule sees.
  http.tunnel = view.tunnel == http::Tunnel::kConnect || view.tunnel == http::Tunnel::kUpgrade;
  return http;
}

bool isHttpPort(const model::NodeSnapshot& snapshot, const model::Workload& workload,
                uint16_t port) {
  return policy::isHttpPort(snapshot.services, workload, port);
}

namespace {

// A request policy allowed, past the pod's rate limits: over a limit it becomes a 429 with
// Retry-After and Envoy's "RL" flag.
void limitRate(RateLimits& limits, const LocalPod& pod, const InboundPeer& peer,
               const http::RequestView& view, http::AuthzDecision& out) {
  RateLimitVerdict v = limits.check(pod.info.uid, peer.destination_port, peer.principal, true);
  if (v.allowed) {
    return;
  }
  out.allow = false;
  out.status = 429;
  out.reply_headers.emplace_back("retry-after", v.retryAfterSeconds());
  out.response_flags = "RL";
  out.reason = v.reason;
  LOG_INFO_EVERY_SECOND("inbound HTTP ", peer.principal.empty() ? peer.source_ip : peer.principal,
                        " -> ", pod.info.name, " ", std::string(view.method), " ",
                        std::string(view.path), ": ", v.reason);
}

}  // namespace

bool authenticateRequest(const jwt::Authenticator& authn, const http::RequestView& view,
                         const policy::HttpRequest& http, jwt::Outcome& token,
                         http::AuthzDecision& out) {
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  authn.authenticate(http.headers, view.query, now, token);
  if (token.kind == jwt::Outcome::Kind::kInvalid) {
    // Envoy's jwt_authn answer (RFC 6750 section 3).
    out.allow = false;
    out.status = 401;
    out.body = token.error;
    out.reply_headers.emplace_back("www-authenticate",
                                   text::cat("Bearer realm=\"http://", view.authority, view.path,
                                             "\", error=\"invalid_token\""));
    out.reason = text::cat("JWT refused: ", token.error);
    return false;
  }
  for (const std::string& name : token.remove_headers) {
    out.edits.remove(name);
  }
  for (const auto& [name, value] : token.set_headers) {
    out.edits.add(name, value);
  }
  return true;
}

http::Authorizer makeL7Authorizer(const WorkloadStateHolder& workloads, RateLimits* limits,
                                  Stats& stats, std::shared_ptr<const LocalPod> pod,
                                  InboundPeer peer) {
  auto source_ip = net::IpAddress::parse(peer.source_ip);
  auto destination_ip = net::IpAddress::parse(peer.destination_ip);
  return [&workloads, limits, &stats, pod = std::move(pod), peer = std::move(peer), source_ip,
          destination_ip](const http::RequestView& view) -> http::AuthzDecision {
    auto state = workloads.current();
    model::Workload fallback;
    const model::Workload* w = &workloadOf(*state, *pod, fallback);
    policy::HttpRequest http = toPolicyRequest(view);
    policy::Request request;
    request.source_principal = peer.principal;
    request.source_ip = source_ip;
    request.destination_ip = destination_ip;
    request.destination_port = peer.destination_port;
    request.http = &http;
    http::AuthzDecision out;
    jwt::Outcome token;
    if (auto authn = state->policies().authenticator(*w)) {
      if (!authenticateRequest(*authn, view, http, token, out)) {
        stats.inc(stats.jwt_refused);
        LOG_INFO_EVERY_SECOND("inbound HTTP ",
                              peer.principal.empty() ? peer.source_ip : peer.principal, " -> ",
                              pod->info.name, " ", std::string(view.method), " ",
                              std::string(view.path), ": ", out.reason);
        return out;
      }
      request.auth = token.auth();
      if (request.auth != nullptr) {
        stats.inc(stats.jwt_valid);
      }
    }
    policy::Decision d = state->policies().evaluate(*w, request);
    if (d.dry_run) {
      recordDryRun(
          d,
          text::cat("inbound HTTP ", peer.principal.empty() ? peer.source_ip : peer.principal,
                    " -> ", pod->info.name, " ", view.method, " ", view.path),
          &stats);
    }
    out.allow = d.allowed;
    if (!d.allowed) {
      out.reason = d.str();  // for the refusal's log line; an allowed request's is never read
    }
    if (d.rule.policy != nullptr) {
      out.policy = d.rule.policy->key.str();
      out.rule = std::to_string(d.rule.rule);
    }
    if (d.allowed && limits != nullptr) {
      limitRate(*limits, *pod, peer, view, out);
    }
    if (out.allow) {
      stats.inc(stats.http_requests_allowed);
    } else if (!out.response_flags.empty()) {
      stats.inc(stats.http_requests_rate_limited);
    } else {
      stats.inc(stats.http_requests_denied);
      LOG_INFO_EVERY_SECOND("inbound HTTP ",
                            peer.principal.empty() ? peer.source_ip : peer.principal, " -> ",
                            pod->info.name, " ", std::string(view.method), " ",
                            std::string(view.authority), std::string(view.path), ": ", out.reason);
    }
    return out;
  };
}

}  // namespace ferry::agent
