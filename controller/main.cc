// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// ferry-controller: wires the parts together. Configuration is parsed and validated once;
// the source (Kubernetes or a manifest folder) feeds the state store, which the agent-facing
// parts read through NodeViewProvider.
#include <signal.h>

#include <iostream>
#include <memory>

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
  // The agent-facing server (CA + distribution on config.listen) attaches to `store` here.
  std::cerr << "ferry-controller: agent-facing server on " << config.listen
            << " is not built into this binary yet; serving the state store only\n";

  int sig = 0;
  sigwait(&signals, &sig);
  std::cerr << "ferry-controller: signal " << sig << ", stopping\n";
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
