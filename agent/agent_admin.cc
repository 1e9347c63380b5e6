// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The agent's operator surface: admin routes (127.0.0.1:15000), the readiness probe
// (:15021/healthz/ready) and /config_dump. Metric sources live in agent_metrics.cc.
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/agent.h"
#include "agent/parts.h"
#include "distribution/model_json.h"
#include "log/log.h"

namespace ferry::agent {
namespace {

using Response = AdminServer::Response;

std::string rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

Response json(const nlohmann::json& body, int code = 200) {
  return {code, "application/json", body.dump(2) + "\n"};
}

}  // namespace

void Agent::onStateApplied(int64_t) {
  config_applied_unix_ms_.store(absl::ToUnixMillis(absl::Now()), std::memory_order_relaxed);
  config_applied_.store(true, std::memory_order_release);
}

Agent::Readiness Agent::readiness() const {
  Readiness r;
  if (draining_.load(std::memory_order_acquire)) {
    r.waiting.push_back(absl::StrCat("draining (pid ", ::getpid(), ")"));
  }
  if (successor_pending_.load()) {
    r.waiting.push_back(absl::StrCat("handing over (pid ", ::getpid(), ") to a starting agent"));
  }
  if (!parts_.capture->attached()) {
    r.waiting.push_back("eBPF capture not attached");
  }
  if (!config_applied_.load(std::memory_order_acquire)) {
    r.waiting.push_back("no configuration applied yet");
  }
  auto state = workloads_.current();
  for (const auto& [uid, pod] : pods_.current()->by_uid) {
    PodIdentity id = identityOf(*pod, state->workloadByUid(uid));
    if (auto ctx = parts_.certs->contextFor(id.ns, id.service_account); !ctx.ok()) {
      r.waiting.push_back(absl::StrCat("no certificate for ", id.ns, "/", id.service_account,
                                       " (pod ", pod->info.name, "): ", ctx.status().message()));
    }
  }
  r.ready = r.waiting.empty();
  return r;
}

std::string Agent::configDumpJson() const {
  auto state = workloads_.current();
  const model::NodeSnapshot& snap = state->snapshot();
  nlohmann::json out;
  out["node"] = config_.node_name;
  out["trust_domain"] = snap.trust_domain;
  int64_t applied_ms = config_applied_unix_ms_.load(std::memory_order_relaxed);
  out["config"] = {
      {"version", snap.version},
      {"applied", config_applied_.load()},
      {"applied_at", applied_ms == 0 ? nlohmann::json(nullptr)
                                     : nlohmann::json(rfc3339(absl::FromUnixMillis(applied_ms)))}};
  out["workloads"] = snap.workloads;
  // The rest of the cluster's pods (identity, node, addresses, telemetry labels): enough for
  // `ferryctl check` to name a source on another node.
  out["pod_index"] = snap.pod_index;
  out["services"] = snap.services;
  out["endpoints"] = snap.endpoints;
  out["policies"] = snap.policies;
  out["request_authentications"] = snap.request_authentications;
  out["peer_authentications"] = snap.peer_authentications;
  out["routes"] = snap.routes;
  out["rate_limits"] = snap.rate_limits;
  // The bundle holds certificates only, but it is long: say how many roots, not what they are.
  size_t roots = 0;
  for (size_t at = 0;
       (at = snap.trust_bundle_pem.find("BEGIN CERTIFICATE", at)) != std::string::npos; ++at) {
    ++roots;
  }
  out["trust_bundle_roots"] = roots;
  // Certificate metadata per identity of an enrolled pod: never key material.
  std::map<std::string, nlohmann::json> certs;
  nlohmann::json pods = nlohmann::json::array();
  for (const auto& [uid, pod] : pods_.current()->by_uid) {
    PodIdentity id = identityOf(*pod, state->workloadByUid(uid));
    std::string key = id.ns + "/" + id.service_account;
    pods.push_back({{"uid", uid},
                    {"name", pod->info.name},
                    {"namespace", pod->info.ns},
                    {"ips", pod->info.ips},
                    {"identity", key}});
    auto [it, fresh] = certs.try_emplace(key);
    nlohmann::json& c = it->second;
    if (fresh) {
      c = {{"namespace", id.ns}, {"service_account", id.service_account}, {"pods", {}}};
      auto ctx = parts_.certs->contextFor(id.ns, id.service_account);
      if (ctx.ok()) {
        absl::Time not_after = (*ctx)->notAfter();
        c["spiffe_id"] = (*ctx)->identity().uri();
        c["not_after"] = rfc3339(not_after);
        c["expires_in_seconds"] = absl::ToInt64Seconds(not_after - absl::Now());
      } else {
        c["error"] = std::string(ctx.status().message());
      }
    }
    c["pods"].push_back(pod->info.name);
  }
  out["pods"] = pods;
  nlohmann::json cert_list = nlohmann::json::array();
  for (auto& [key, c] : certs) {
    cert_list.push_back(std::move(c));
  }
  out["certificates"] = cert_list;
  Readiness r = readiness();
  out["ready"] = r.ready;
  out["waiting"] = r.waiting;
  return out.dump(2) + "\n";
}

absl::Status Agent::startAdmin() {
  std::map<std::string, AdminServer::Route> routes;
  routes["/stats"] = AdminServer::getOnly([this] {
    return Response{200, "application/json", statsJson()};
  });
  routes["/pods"] = AdminServer::getOnly([this] {
    return Response{200, "application/json", podsJson()};
  });
  routes["/config_dump"] = AdminServer::getOnly([this] {
    return Response{200, "application/json", configDumpJson()};
  });
  auto ready = [this] {
    Readiness r = readiness();
    if (r.ready) {
      std::string body = "ready\n";
      if (predecessor_ && predecessor_->alive() && predecessor_->connections() >= 0) {
        absl::StrAppend(&body, "previous agent (pid ", predecessor_->pid(), ") draining ",
                        predecessor_->connections(), " connections\n");
      }
      return Response{200, "text/plain", body};
    }
    return Response{503, "text/plain", "not ready: " + absl::StrJoin(r.waiting, "; ") + "\n"};
  };
  routes["/ready"] = AdminServer::getOnly(ready);
  // GET shows the level; POST /logging?level=debug changes it at run time (Envoy's form).
  routes["/logging"] = [](const AdminServer::Request& req) {
    if (req.method == "POST") {
      auto it = req.query.find("level");
      std::optional<LogLevel> level =
          it == req.query.end() ? std::nullopt : parseLogLevel(it->second);
      if (!level) {
        return Response{400, "text/plain", "use POST /logging?level=debug|info|warn|error\n"};
      }
      setLogLevel(*level);
      LOG_INFO("admin: log level set to ", it->second);
    } else if (req.method != "GET") {
      return Response{405, "text/plain", "use GET or POST\n"};
    }
    return json({{"level", levelName(logLevel())}});
  };
  auto admin = AdminServer::start(config_.admin_address, config_.admin_port, std::move(routes),
                                  inherited_.takeOne("admin"));
  if (!admin.ok()) {
    return admin.status();
  }
  admin_ = *std::move(admin);
  std::map<std::string, AdminServer::Route> probe;
  probe["/healthz/ready"] = AdminServer::getOnly(ready);
  auto readiness = AdminServer::start(config_.readiness_address, config_.readiness_port,
                                      std::move(probe), inherited_.takeOne("readiness"));
  if (!readiness.ok()) {
    return readiness.status();
  }
  readiness_ = *std::move(readiness);
  addMetricSources();
  return absl::OkStatus();
}

}  // namespace ferry::agent
