// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// ferry-controller: wires the parts together. Configuration is parsed and validated once;
// the source (Kubernetes or a manifest folder) feeds the state store, which the agent-facing
// parts (CA + distribution on --listen) read through NodeViewProvider.
//
// Signals: SIGHUP rotates the root CA (see AgentServer::rotateRoot), SIGINT/SIGTERM stop.
#include <signal.h>
#include <time.h>

#include <iostream>
#include <memory>

#include <unistd.h>

#include "controller/agent_server.h"
#include "controller/config.h"
#include "controller/ha/ca_secret.h"
#include "controller/ha/leader_election.h"
#include "controller/jwks_fetcher.h"
#include "controller/kube_source.h"
#include "controller/standalone_source.h"
#include "controller/store.h"
#include "ferry/version.h"
#include "kube/config.h"
#include "log/log.h"
#include "metrics/exporter.h"
#include "process/process.h"

namespace ferry::controller {
namespace {

absl::StatusOr<kube::KubeConfig> kubeConfigFor(const ControllerConfig& config) {
  if (config.mode() == ControllerConfig::Mode::kKubeconfig) {
    return kube::loadKubeconfig(config.kubeconfig, config.kube_context);
  }
  return kube::loadInClusterFromEnvironment();
}

void logSummary(const StateStore& store, const Source& source) {
  LOG_INFO(
      source.describe(), ": version ", store.version(), ", ", store.count(k8s::Kind::kNamespace),
      " namespaces, ", store.count(k8s::Kind::kPod), " pods, ", store.count(k8s::Kind::kService),
      " services, ", store.count(k8s::Kind::kEndpointSlice), " endpoint slices, ",
      store.count(k8s::Kind::kAuthorizationPolicy), " authorization policies, ",
      store.count(k8s::Kind::kPeerAuthentication), " peer authentications, ",
      store.count(k8s::Kind::kHttpRoute), " routes, ", store.count(k8s::Kind::kRateLimitPolicy),
      " rate limits; ", store.count(k8s::Kind::kRequestAuthentication),
      " request authentications; ", store.stats().rejected.load(), " objects refused");
}

std::string hostName() {
  char name[256] = {};
  return gethostname(name, sizeof(name) - 1) == 0 ? std::string(name) : std::string("unknown");
}

// Prometheus: ferry_controller_* read from the store and the agent server at scrape time.
absl::StatusOr<std::unique_ptr<metrics::Exporter>> startMetrics(const ControllerConfig& config,
                                                                const StateStore& store,
                                                                AgentServer& agents,
                                                                const LeaderElector* elector,
                                                                const JwksFetcher& jwks) {
  auto exporter = metrics::Exporter::start(absl::StrCat("0.0.0.0:", config.metrics_port));
  if (!exporter.ok()) {
    return absl::Status(
        exporter.status().code(),
        absl::StrCat("--metrics-port ", config.metrics_port, ": ", exporter.status().message()));
  }
  (*exporter)->addSource([&store, &agents, elector, &jwks] {
    std::vector<metrics::Sample> out;
    auto gauge = [&](std::string name, std::string help, double v,
                     std::vector<std::pair<std::string, std::string>> labels = {}) {
      out.push_back({std::move(name), std::move(help), false, std::move(labels), v});
    };
    auto counter = [&](std::string name, std::string help, double v) {
      out.push_back({std::move(name), std::move(help), true, {}, v});
    };
    gauge("ferry_controller_config_version", "version of the state store",
          static_cast<double>(store.version()));
    for (k8s::Kind kind :
         {k8s::Kind::kNamespace, k8s::Kind::kServiceAccount, k8s::Kind::kPod, k8s::Kind::kService,
          k8s::Kind::kEndpointSlice, k8s::Kind::kAuthorizationPolicy,
          k8s::Kind::kPeerAuthentication, k8s::Kind::kHttpRoute, k8s::Kind::kRateLimitPolicy,
          k8s::Kind::kRequestAuthentication, k8s::Kind::kGrpcRoute}) {
      gauge("ferry_controller_objects", "objects in the state store by kind",
            static_cast<double>(store.count(kind)), {{"kind", std::string(k8s::kindName(kind))}});
    }
    counter("ferry_controller_objects_refused_total", "objects refused at admission",
            static_cast<double>(store.stats().rejected.load()));
    gauge("ferry_controller_policies_failing_closed",
          "refused AuthorizationPolicies in force as deny-all stand-ins until fixed",
          static_cast<double>(store.failingClosedPolicies()));
    counter("ferry_controller_snapshots_sent_total", "full snapshots sent to agents",
            static_cast<double>(agents.distribution().fullSnapshotsSent()));
    counter("ferry_controller_deltas_sent_total", "deltas sent to agents",
            static_cast<double>(agents.distribution().deltasSent()));
    counter("ferry_controller_resumes_total", "agent streams resumed from their version",
            static_cast<double>(agents.distribution().resumes()));
    counter("ferry_controller_jwks_fetches_total", "jwksUri fetches that succeeded",
            static_cast<double>(jwks.fetched()));
    counter("ferry_controller_jwks_fetch_failures_total",
            "jwksUri fetches that failed (the last good keys are kept)",
            static_cast<double>(jwks.failed()));
    gauge("ferry_controller_leader", "1 when this replica holds the leader Lease",
          elector == nullptr || elector->leading() ? 1 : 0);
    return out;
  });
  return exporter;
}

int run(const ControllerConfig& config) {
  StoreOptions store_options;
  store_options.trust_domain = config.trust_domain;
  store_options.root_namespace = config.root_namespace;
  store_options.endpoints_from_selectors = config.mode() == ControllerConfig::Mode::kStandalone;
  StateStore store(store_options);

  k8s::DecodeOptions decode;
  decode.root_namespace = config.root_namespace;
  std::unique_ptr<kube::Client> client;
  std::unique_ptr<Source> source;
  if (config.mode() == ControllerConfig::Mode::kStandalone) {
    StandaloneOptions options;
    options.decode = decode;
    options.debounce = std::chrono::milliseconds(config.reload_debounce_ms);
    source = std::make_unique<StandaloneSource>(config.manifests_dir, store, options);
  } else {
    auto kube_config = kubeConfigFor(config);
    if (!kube_config.ok()) {
      LOG_ERROR(kube_config.status().message());
      return 1;
    }
    client = std::make_unique<kube::Client>(*kube_config);
    KubeSourceOptions options;
    options.decode = decode;
    options.informer.page_size = config.page_size;
    options.informer.watch_timeout_seconds = config.watch_timeout_seconds;
    source = std::make_unique<KubeSource>(*client, store, options);
  }

  // Signals are taken synchronously by sigwait below, never by a handler.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (auto s = source->start(); !s.ok()) {
    LOG_ERROR("cannot start ", source->describe(), ": ", s.message());
    return 1;
  }
  LOG_INFO("syncing from ", source->describe());
  while (!source->waitForSync(std::chrono::seconds(10))) {
    LOG_WARN("still waiting for the initial list from ", source->describe());
  }
  logSummary(store, *source);
  // Keys of RequestAuthentication jwksUris, fetched here and pushed with the node state.
  JwksFetcher jwks(store, JwksFetcherOptions{});
  auto agents = AgentServer::start(config, store, client.get());
  if (!agents.ok()) {
    LOG_ERROR(agents.status().message());
    source->stop();
    return 1;
  }
  LOG_INFO("serving agents on port ", (*agents)->port(), " (trust domain ", config.trust_domain,
           ")");

  // Replicas all serve agents; only the leader writes the trust-bundle ConfigMap.
  // Declared before the elector so the elector (and its thread) is destroyed first.
  const LeaderElector* leader = nullptr;
  auto publishBundle = [&] {
    if (config.trust_bundle_configmap.empty() || (leader && !leader->leading())) {
      return;
    }
    const std::string bundle = (*agents)->authority().trustBundlePem(absl::Now());
    if (auto s = publishTrustBundle(*client, config.ownNamespace(), config.trust_bundle_configmap,
                                    bundle);
        !s.ok()) {
      LOG_WARN("cannot publish the trust bundle to ConfigMap ", config.trust_bundle_configmap, ": ",
               s.message());
    }
  };
  std::unique_ptr<LeaderElector> elector;
  if (config.leader_elect) {
    LeaderElectionConfig election{
        .lease_namespace = config.ownNamespace(),
        .lease_name = config.lease_name,
        .identity = config.pod_name.empty() ? hostName() : config.pod_name,
        .lease_duration = config.lease_duration,
        .renew_deadline = config.renew_deadline,
        .retry_period = config.retry_period};
    if (auto s = election.validate(); !s.ok()) {
      LOG_ERROR(s.message());
      return 2;
    }
    elector = std::make_unique<LeaderElector>(*client, election);
    leader = elector.get();
    elector->start([&, identity = election.identity](bool leading) {
      LOG_INFO(identity, leading ? " leads" : " no longer leads", " (Lease ", config.ownNamespace(),
               "/", config.lease_name, ")");
      if (leading) {
        publishBundle();
      }
    });
  } else {
    publishBundle();
  }
  std::unique_ptr<metrics::Exporter> exporter;
  if (config.metrics_port > 0) {
    auto started = startMetrics(config, store, **agents, elector.get(), jwks);
    if (!started.ok()) {
      LOG_ERROR(started.status().message());
      return 1;
    }
    exporter = *std::move(started);
  }

  // A retiring root leaves the bundle when its overlap window closes, and a new root written
  // into the CA Secret is picked up: look every --resync-seconds.
  const timespec tick{config.resync_seconds, 0};
  int sig = 0;
  while (true) {
    sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig < 0) {
      if (!config.ca_secret.empty()) {
        if (auto s = (*agents)->rotateRoot(); !s.ok()) {
          LOG_WARN("CA Secret: ", s.message());
        }
      }
      (*agents)->refreshTrustBundle();
      publishBundle();
      continue;
    }
    if (sig != SIGHUP) {
      break;
    }
    if (auto s = (*agents)->rotateRoot(); !s.ok()) {
      LOG_ERROR("root rotation failed, keeping the current root: ", s.message());
    } else {
      LOG_INFO("root rotated; the previous root stays trusted for ", config.rotation_overlap_hours,
               "h");
      publishBundle();
    }
  }
  LOG_INFO("signal ", sig, ", stopping");
  if (elector) {
    elector->stop();  // hands the Lease over at once
  }
  exporter.reset();
  agents->reset();
  source->stop();
  logSummary(store, *source);
  return 0;
}

}  // namespace
}  // namespace ferry::controller

int main(int argc, char** argv) {
  ferry::process::configure();
  std::vector<std::string> args(argv, argv + argc);
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << ferry::controller::usage();
      return 0;
    }
    if (a == "--version") {
      std::cout << "ferry-controller " << ferry::kVersion << "\n";
      return 0;
    }
  }
  auto config = ferry::controller::parseFlags(args);
  if (!config.ok()) {
    std::cerr << "ferry-controller: " << config.status().message() << "\n";
    return 2;
  }
  if (auto s = config->validate(); !s.ok()) {
    std::cerr << "ferry-controller: " << s.message() << "\n";
    return 2;
  }
  ferry::setLogLevel(*ferry::parseLogLevel(config->log_level));
  return ferry::controller::run(*config);
}
