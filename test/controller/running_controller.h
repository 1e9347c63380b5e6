// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// ferry-controller's parts as main.cc assembles them, in-process: a standalone folder holding
// `manifests`, the state store, and the agent-facing server (CA kept in a temp folder, a
// bootstrap token file, the trust bundle written to bundle.pem) on a loopback port.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "controller/agent_server.h"
#include "controller/standalone_source.h"
#include "controller/store.h"
#include "status_testing.h"

namespace ferry::controller::testing {

struct RunningController {
  std::filesystem::path dir;
  ControllerConfig config;
  StateStore store{StoreOptions{.endpoints_from_selectors = true}};
  std::unique_ptr<StandaloneSource> source;
  std::unique_ptr<AgentServer> server;

  // `tokens`: the bootstrap token file's text ("<token> [node]" lines).
  RunningController(const std::string& manifests, const std::string& tokens) {
    char tmpl[] = "/tmp/ferry-controller-test-XXXXXX";
    dir = ::mkdtemp(tmpl);
    std::filesystem::create_directories(dir / "manifests");
    std::ofstream(dir / "manifests" / "all.yaml") << manifests;
    std::ofstream(dir / "tokens") << tokens;
    config.manifests_dir = dir / "manifests";
    config.bootstrap_token_file = dir / "tokens";
    config.ca_dir = dir / "ca";
    config.trust_bundle_file = dir / "bundle.pem";
    config.listen = "127.0.0.1:0";
    REQUIRE_OK(config.validate());
    source = std::make_unique<StandaloneSource>(config.manifests_dir, store, StandaloneOptions{});
    REQUIRE_OK(source->start());
    REQUIRE(source->waitForSync(std::chrono::seconds(10)));
    auto started = AgentServer::start(config, store, nullptr);
    REQUIRE_OK(started);
    server = *std::move(started);
  }
  ~RunningController() {
    server.reset();
    source->stop();
    std::filesystem::remove_all(dir);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server->port()); }
};

}  // namespace ferry::controller::testing
