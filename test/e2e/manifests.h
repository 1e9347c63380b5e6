// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Manifests more than one end-to-end test applies to the mesh of mesh.h.

#include <string>

#include "absl/strings/str_cat.h"

namespace ferry::e2e {

// "api" selects n2p1: 9080 by port name, 9081 by appProtocol, 9082 stays L4.
inline constexpr char kApiService[] = R"(apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: default
spec:
  clusterIP: 10.96.0.20
  selector:
    app: n2p1
  ports:
  - name: http-api
    port: 9080
  - name: h2
    port: 9081
    appProtocol: kubernetes.io/h2c
  - name: tcp-raw
    port: 9082
)";

// An AuthorizationPolicy in default selecting n2p1 (app: n2p1); `rules` is the YAML list under
// `rules:`, indented two spaces.
inline std::string n2p1Policy(const std::string& name, const std::string& action,
                              const std::string& rules) {
  return absl::StrCat("apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n",
                      "metadata:\n  name: ", name, "\n  namespace: default\n",
                      "spec:\n  selector:\n    matchLabels:\n      app: n2p1\n",
                      "  action: ", action, "\n  rules:\n", rules);
}

// Denies every request to n2p1 whose path starts with /admin.
inline const std::string kDenyAdmin = n2p1Policy("deny-admin", "DENY", R"(  - to:
    - operation:
        paths: ["/admin*"]
)");

// n2p1 admits only n1p2 (by its service account).
inline constexpr char kAllowOnlyN1p2[] = R"(apiVersion: security.ferry.dev/v1alpha1
kind: AuthorizationPolicy
metadata:
  name: allow-n1p2
  namespace: default
spec:
  selector:
    matchLabels:
      app: n2p1
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sa-n1p2"]
)";

// A DENY of n1p1's principal on the pods labelled app=<app>.
inline std::string denyN1p1On(const std::string& app) {
  return absl::StrCat("apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n",
                      "metadata:\n  name: deny-n1p1\n  namespace: default\n",
                      "spec:\n  selector:\n    matchLabels:\n      app: ", app, "\n",
                      "  action: DENY\n  rules:\n  - from:\n    - source:\n",
                      "        principals: [\"cluster.local/ns/default/sa/sa-n1p1\"]\n");
}

// n1p2 refuses n1p1 (same node).
inline const std::string kDenyN1p1ToN1p2 = denyN1p1On("n1p2");

}  // namespace ferry::e2e
