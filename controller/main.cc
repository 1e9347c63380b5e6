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

#include "controller/agent_server.h"
#include "controller/config.h"
#include "controller/kube_source.h"
#include "controller/standalone_source.h"
#include "controller/store.h"
#include "kube/config.h"

namespace ferry::controller {
namespace {

absl::StatusOr<kube::KubeConfig> kubeConfigFor(const ControllerConfig& config) {
  if (config.mode() == ControllerConfig::Mode::kKubeconfig) {
    return kube::loadKubeconfig(config.kubeconfig, config.kube_context);
  }
  return kube::loadInClusterFromEnvironment();
}

void logSummary(const StateStore& store, const Source& source) {
  std::cerr << "ferry-controller: " << source.describe() << ": version " << store.version() << ", "
            << store.count(k8s::Kind::kNamespace) << " namespaces, " << store.count(k8s::Kind::kPod)
            << " pods, " << store.count(k8s::Kind::kService) << " services, "
            << store.count(k8s::Kind::kEndpointSlice) << " endpoint slices, "
            << store.count(k8s::Kind::kAuthorizationPolicy) << " authorization policies, "
            << store.count(k8s::Kind::kPeerAuthentication) << " peer authentications, "
            << store.count(k8s::Kind::kHttpRoute) << " routes; " << store.stats().rejected.load()
            << " objects refused\n";
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
      std::cerr << "ferry-controller: " << kube_config.status().message() << "\n";
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
    std::cerr << "ferry-controller: cannot start " << source->describe() << ": " << s.message()
              << "\n";
    return 1;
  }
  std::cerr << "ferry-controller: syncing from " << source->describe() << "\n";
  while (!source->waitForSync(std::chrono::seconds(10))) {
    std::cerr << "ferry-controller: still waiting for the initial list from " << source->describe()
              << "\n";
  }
  logSummary(store, *source);
  auto agents = AgentServer::start(config, store, client.get());
  if (!agents.ok()) {
    std::cerr << "ferry-controller: " << agents.status().message() << "\n";
    source->stop();
    return 1;
  }
  std::cerr << "ferry-controller: serving agents on port " << (*agents)->port() << " (trust domain "
            << config.trust_domain << ")\n";

  // A retiring root leaves the bundle when its overlap window closes: look once a minute.
  const timespec tick{60, 0};
  int sig = 0;
  while (true) {
    sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig < 0) {
      (*agents)->refreshTrustBundle();
      continue;
    }
    if (sig != SIGHUP) {
      break;
    }
    if (auto s = (*agents)->rotateRoot(); !s.ok()) {
      std::cerr << "ferry-controller: root rotation failed, keeping the current root: "
                << s.message() << "\n";
    } else {
      std::cerr << "ferry-controller: root rotated; the previous root stays trusted for "
                << config.rotation_overlap_hours << "h\n";
    }
  }
  std::cerr << "ferry-controller: signal " << sig << ", stopping\n";
  agents->reset();
  source->stop();
  logSummary(store, *source);
  return 0;
}

}  // namespace
}  // namespace ferry::controller

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << ferry::controller::usage();
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
  return ferry::controller::run(*config);
}
