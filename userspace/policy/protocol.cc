// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "policy/protocol.h"

#include <array>
#include <cctype>
#include <string>
#include <string_view>

namespace ferry::policy {
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
  return model::labelsMatch(selector, w.labels);
}

}  // namespace

bool isHttpPort(const std::vector<model::Service>& services, const model::Workload& workload,
                uint16_t port) {
  for (const model::Service& s : services) {
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

}  // namespace ferry::policy
