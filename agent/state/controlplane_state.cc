// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/state/controlplane_state.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "log/log.h"
#include "tls/x509.h"

namespace ferry::agent {

absl::StatusOr<controlplane::ClientConfig> controllerClientConfig(const std::string& address,
                                                                  const std::string& node,
                                                                  const std::string& trust_domain,
                                                                  const std::string& token_file,
                                                                  const std::string& roots_file) {
  controlplane::ClientConfig c;
  c.address = address;
  c.node = node;
  c.trust_domain = trust_domain;
  c.controller_identity =
      absl::StrCat("spiffe://", trust_domain, "/ns/ferry-system/sa/ferry-controller");
  auto roots = tls::readPemFile(roots_file);
  if (!roots.ok()) {
    return absl::Status(roots.status().code(), absl::StrCat("--controller-ca ", roots_file, ": ",
                                                            roots.status().message()));
  }
  if (roots->find("BEGIN CERTIFICATE") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--controller-ca ", roots_file, ": no PEM certificate in it"));
  }
  c.ca_bundle_pem = *roots;
  // Jittered; capped so that a controller restart is picked up within seconds.
  c.max_backoff = absl::Seconds(10);
  // Re-read at each bootstrap: a projected token is rotated on disk.
  c.bootstrap_token = [token_file]() -> absl::StatusOr<std::string> {
    auto text = tls::readPemFile(token_file);
    if (!text.ok()) {
      return absl::Status(text.status().code(), absl::StrCat("--bootstrap-token-file ", token_file,
                                                             ": ", text.status().message()));
    }
    std::string token(absl::StripAsciiWhitespace(*text));
    // A token file may carry "<token> <node>" like the controller's; the token is the first word.
    token = token.substr(0, token.find_first_of(" \t\n"));
    if (token.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--bootstrap-token-file ", token_file, " is empty"));
    }
    return token;
  };
  if (auto first = c.bootstrap_token(); !first.ok()) {
    return first.status();
  }
  return c;
}

absl::Status ControllerLink::start(controlplane::ControlPlaneClient::OnUpdate on_update) {
  auto started = controlplane::ControlPlaneClient::start(
      config_, [this, on_update](const model::NodeSnapshot& snap) {
        // Applied first, recorded second: start() returns once the agent holds the state.
        on_update(snap);
        std::lock_guard lock(mu_);
        last_ = snap;
      });
  if (!started.ok()) {
    return started.status();
  }
  std::lock_guard lock(mu_);
  client_ = std::shared_ptr<controlplane::ControlPlaneClient>(std::move(*started));
  return absl::OkStatus();
}

void ControllerLink::stop() {
  std::shared_ptr<controlplane::ControlPlaneClient> client;
  {
    std::lock_guard lock(mu_);
    client = std::move(client_);
  }
  // Destroyed outside the lock: the client's thread may be inside the update callback above.
  client.reset();
}

std::shared_ptr<controlplane::ControlPlaneClient> ControllerLink::client() const {
  std::lock_guard lock(mu_);
  return client_;
}

std::optional<model::NodeSnapshot> ControllerLink::snapshot() const {
  std::lock_guard lock(mu_);
  return last_;
}

std::string ControllerLink::lastError() const {
  auto c = client();
  return c ? c->lastError() : "not connected";
}

bool ControllerLink::connected() const {
  auto c = client();
  return c != nullptr && c->connected();
}

absl::StatusOr<std::string> ControllerLink::signWorkload(const model::ObjectKey& pod,
                                                         const std::string& csr_pem,
                                                         absl::Duration timeout) {
  auto c = client();
  if (!c) {
    return absl::UnavailableError("controller link stopped");
  }
  return c->signWorkload(pod, csr_pem, timeout);
}

absl::Status ControllerStateSource::start(Callback on_update) {
  if (auto s = link_->start([on_update](const model::NodeSnapshot& snap) { on_update(snap); });
      !s.ok()) {
    return s;
  }
  const absl::Time deadline = absl::Now() + wait_;
  while (!link_->snapshot().has_value()) {
    if (absl::Now() >= deadline) {
      return absl::UnavailableError(absl::StrCat("no snapshot from the controller after ",
                                                 absl::FormatDuration(wait_), ": ",
                                                 link_->lastError()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  LOG_INFO("controller: first snapshot, version ", link_->snapshot()->version);
  return absl::OkStatus();
}

}  // namespace ferry::agent
