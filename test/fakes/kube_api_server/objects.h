// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Real-shaped Kubernetes objects for tests.

#include <nlohmann/json.hpp>

#include <string>

namespace ferry::testing {

inline nlohmann::json podJson(const std::string& ns, const std::string& name,
                              const std::string& node, const std::string& ip,
                              const nlohmann::json& labels = nlohmann::json::object(),
                              const std::string& service_account = "default") {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}}},
          {"spec",
           {{"nodeName", node},
            {"serviceAccountName", service_account},
            {"containers", {{{"name", "app"}, {"image", "app:1"}}}}}},
          {"status", {{"phase", "Running"}, {"podIP", ip}, {"podIPs", {{{"ip", ip}}}}}}};
}

inline nlohmann::json namespaceJson(const std::string& name,
                                    const nlohmann::json& labels = nlohmann::json::object()) {
  return {{"apiVersion", "v1"},
          {"kind", "Namespace"},
          {"metadata", {{"name", name}, {"labels", labels}}}};
}

}  // namespace ferry::testing
