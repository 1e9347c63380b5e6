// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Enforcement rows shared by the engine's test (test/policy/enforcement_test.cc) and the test
// that `ferryctl check` and the agent's authorizer answer alike (test/agent/check_parity_test.cc):
// plaintext peers against identity wildcards, HTTP-only fields on TCP ports (Istio's TCP
// authorization task), `source: {}`, serviceAccounts, dry-run and refused policies.
//
// Each row is decided the way the destination's agent decides: the connection first (on a TCP
// port that is all; on an HTTP port with Request::http_port), then, when the connection is
// admitted and the row has a request, the HTTP request. `expect` is Decision::str() of the
// decision that settled it.

#include <optional>
#include <string>
#include <vector>

#include "policy_test_util.h"

namespace ferry::policy::testing {

struct Peer {
  std::string ns = "demo";
  std::string sa = "client";
  bool plaintext = false;
  std::string principal() const {
    return plaintext ? "" : "spiffe://cluster.local/ns/" + ns + "/sa/" + sa;
  }
};

struct EnforcementRow {
  const char* name;
  std::string policies;  // manifests; refused policies are replaced by their stand-ins
  Peer peer;
  uint16_t port = 9000;
  bool http_port = false;
  std::optional<std::string> method;  // with path: an HTTP request after the connection
  std::string path = "/";
  bool allowed = false;
  std::string expect;
};

// A policy document with an istio.io/dry-run annotation.
inline std::string dryRun(const std::string& name, const std::string& action,
                          const std::string& rules) {
  return "apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n"
         "metadata:\n  name: " +
         name +
         "\n  namespace: demo\n  annotations: {istio.io/dry-run: 'true'}\n"
         "spec:\n  action: " +
         action + "\n  selector: {matchLabels: {app: web}}\n  rules: " + rules + "\n---\n";
}

// `doc` (an ALLOW policy) with another action written in.
inline std::string withAction(std::string doc, const std::string& action) {
  const std::string from = "action: ALLOW";
  doc.replace(doc.find(from), from.size(), "action: " + action);
  return doc;
}

inline std::vector<EnforcementRow> enforcementRows() {
  const Peer client;
  const Peer admin{.ns = "ops", .sa = "admin"};
  const Peer plaintext{.plaintext = true};
  const std::string any_peer = ap("any-peer", "ALLOW", "[{from: [{source: {principals: ['*']}}]}]");
  const std::string any_ns = ap("any-ns", "ALLOW", "[{from: [{source: {namespaces: ['*']}}]}]");
  const std::string require_mtls =
      ap("require-mtls", "DENY", "[{from: [{source: {notPrincipals: ['*']}}]}]");
  // Istio's "Authorization for TCP traffic" task, step by step.
  const std::string tcp_ports =
      ap("tcp-policy", "ALLOW", "[{to: [{operation: {ports: ['9000', '9001']}}]}]");
  const std::string tcp_allow_methods =
      ap("tcp-policy", "ALLOW", "[{to: [{operation: {methods: ['GET'], ports: ['9000']}}]}]");
  const std::string tcp_deny_methods =
      ap("tcp-policy", "DENY", "[{to: [{operation: {methods: ['GET'], ports: ['9000']}}]}]");
  const std::string deny_admin_delete =
      ap("deny-admin-delete", "DENY",
         "[{from: [{source: {principals: [cluster.local/ns/ops/sa/admin]}}], to: [{operation: "
         "{methods: [DELETE]}}]}]");
  const std::string client_get =
      ap("client-get", "ALLOW",
         "[{from: [{source: {principals: [cluster.local/ns/demo/sa/client]}}], to: [{operation: "
         "{methods: [GET]}}]}]");
  const std::string empty_source = ap("empty-source", "ALLOW", "[{from: [{source: {}}]}]");
  const std::string by_sa =
      ap("by-sa", "ALLOW", "[{from: [{source: {serviceAccounts: [demo/client]}}]}]");
  const std::string not_sa =
      ap("not-sa", "DENY", "[{from: [{source: {notServiceAccounts: [demo/client]}}]}]");
  const std::string refused_allow =
      withAction(ap("bad", "ALLOW", "[{from: [{source: {principals: ['*']}}]}]"), "MAYBE");
  const std::string refused_deny =
      ap("bad-deny", "DENY", "[{from: [{source: {ipBlocks: [10.0.0.0/33]}}]}]");

  return {
      // --- `*` in an identity field never matches a peer without an identity
      {"TCP: ALLOW principals ['*'] refuses a plaintext peer",
       any_peer,
       plaintext,
       9000,
       false,
       {},
       "/",
       false,
       "denied: no ALLOW policy matched"},
      {"TCP: ALLOW principals ['*'] admits an mTLS peer",
       any_peer,
       client,
       9000,
       false,
       {},
       "/",
       true,
       "allowed by ALLOW policy demo/any-peer rule 0"},
      {"TCP: ALLOW namespaces ['*'] refuses a plaintext peer",
       any_ns,
       plaintext,
       9000,
       false,
       {},
       "/",
       false,
       "denied: no ALLOW policy matched"},
      {"HTTP port: ALLOW principals ['*'] refuses a plaintext connection", any_peer, plaintext,
       8080, true, "GET", "/", false, "denied: no ALLOW policy matched"},
      // --- not forms hold for a peer without identity (Istio, ztunnel rbac.rs)
      {"TCP: DENY notPrincipals ['*'] refuses a plaintext peer",
       require_mtls,
       plaintext,
       9000,
       false,
       {},
       "/",
       false,
       "denied by DENY policy demo/require-mtls rule 0"},
      {"TCP: DENY notPrincipals ['*'] lets an mTLS peer in",
       require_mtls,
       client,
       9000,
       false,
       {},
       "/",
       true,
       "allowed: no ALLOW policy applies"},
      // --- Istio's TCP authorization task
      {"TCP task: ALLOW ports 9000/9001 admits 9000",
       tcp_ports,
       client,
       9000,
       false,
       {},
       "/",
       true,
       "allowed by ALLOW policy demo/tcp-policy rule 0"},
      {"TCP task: ALLOW ports 9000/9001 refuses 9002",
       tcp_ports,
       client,
       9002,
       false,
       {},
       "/",
       false,
       "denied: no ALLOW policy matched"},
      {"TCP task: an ALLOW rule with methods never matches on a TCP port",
       tcp_allow_methods,
       client,
       9000,
       false,
       {},
       "/",
       false,
       "denied: no ALLOW policy matched"},
      {"TCP task: DENY methods+port 9000 denies port 9000 (methods dropped)",
       tcp_deny_methods,
       client,
       9000,
       false,
       {},
       "/",
       false,
       "denied by DENY policy demo/tcp-policy rule 0"},
      {"TCP task: DENY methods+port 9000 lets port 9001 through",
       tcp_deny_methods,
       client,
       9001,
       false,
       {},
       "/",
       true,
       "allowed: no ALLOW policy applies"},
      // --- DENY with HTTP-only fields keeps its principals on a TCP port
      {"TCP: DENY methods from admin lets a principal it does not name in",
       deny_admin_delete,
       client,
       9000,
       false,
       {},
       "/",
       true,
       "allowed: no ALLOW policy applies"},
      {"TCP: DENY methods from admin denies admin (methods dropped)",
       deny_admin_delete,
       admin,
       9000,
       false,
       {},
       "/",
       false,
       "denied by DENY policy demo/deny-admin-delete rule 0"},
      {"HTTP port: DENY methods from admin admits admin's connection, then GET", deny_admin_delete,
       admin, 8080, true, "GET", "/", true, "allowed: no ALLOW policy applies"},
      {"HTTP port: DENY methods from admin refuses admin's DELETE", deny_admin_delete, admin, 8080,
       true, "DELETE", "/", false, "denied by DENY policy demo/deny-admin-delete rule 0"},
      {"HTTP port: ALLOW client GET admits client's GET", client_get, client, 8080, true, "GET",
       "/", true, "allowed by ALLOW policy demo/client-get rule 0"},
      {"HTTP port: ALLOW client GET refuses client's POST", client_get, client, 8080, true, "POST",
       "/", false, "denied: no ALLOW policy matched"},
      {"HTTP port: ALLOW client GET refuses admin's connection", client_get, admin, 8080, true,
       "GET", "/", false, "denied: no ALLOW policy matched"},
      // --- source: {} matches nothing (ztunnel)
      {"ALLOW from source: {} admits nobody",
       empty_source,
       client,
       9000,
       false,
       {},
       "/",
       false,
       "denied: no ALLOW policy matched"},
      {"ALLOW from source: {} beside a real source admits that source",
       ap("mixed", "ALLOW", "[{from: [{source: {}}, {source: {namespaces: [demo]}}]}]"),
       client,
       9000,
       false,
       {},
       "/",
       true,
       "allowed by ALLOW policy demo/mixed rule 0"},
      {"DENY from source: {} denies nobody",
       ap("deny-empty", "DENY", "[{from: [{source: {}}]}]"),
       client,
       9000,
       false,
       {},
       "/",
       true,
       "allowed: no ALLOW policy applies"},
      // --- serviceAccounts
      {"ALLOW serviceAccounts demo/client admits it",
       by_sa,
       client,
       9000,
       false,
       {},
       "/",
       true,
       "allowed by ALLOW policy demo/by-sa rule 0"},
      {"ALLOW serviceAccounts demo/client refuses ops/admin",
       by_sa,
       admin,
       9000,
       false,
       {},
       "/",
       false,
       "denied: no ALLOW policy matched"},
      {"ALLOW serviceAccounts refuses a plaintext peer",
       by_sa,
       plaintext,
       9000,
       false,
       {},
       "/",
       false,
       "denied: no ALLOW policy matched"},
      {"DENY notServiceAccounts demo/client denies ops/admin",
       not_sa,
       admin,
       9000,
       false,
       {},
       "/",
       false,
       "denied by DENY policy demo/not-sa rule 0"},
      {"DENY notServiceAccounts demo/client lets it in",
       not_sa,
       client,
       9000,
       false,
       {},
       "/",
       true,
       "allowed: no ALLOW policy applies"},
      {"DENY notServiceAccounts denies a plaintext peer",
       not_sa,
       plaintext,
       9000,
       false,
       {},
       "/",
       false,
       "denied by DENY policy demo/not-sa rule 0"},
      // --- dry-run: decided and reported, not enforced
      {"dry-run DENY everything: allowed, the dry-run decision denies",
       dryRun("shadow-deny", "DENY", "[{}]"),
       client,
       9000,
       false,
       {},
       "/",
       true,
       "allowed: no ALLOW policy applies; dry-run: denied by DENY policy demo/shadow-deny rule "
       "0"},
      {"dry-run ALLOW for admin only: allowed, the dry-run decision denies the client",
       dryRun("shadow-allow", "ALLOW",
              "[{from: [{source: {principals: [cluster.local/ns/ops/sa/admin]}}]}]"),
       client,
       9000,
       false,
       {},
       "/",
       true,
       "allowed: no ALLOW policy applies; dry-run: denied: no ALLOW policy matched"},
      // --- a refused policy fails closed
      {"a refused ALLOW makes its workloads deny all, even beside an ALLOW that matches",
       refused_allow + any_peer,
       client,
       9000,
       false,
       {},
       "/",
       false,
       "denied: AuthorizationPolicy demo/bad was refused and fails closed until it is fixed "
       "(AuthorizationPolicy demo/bad: spec.action: 'MAYBE' is not ALLOW, DENY or AUDIT)"},
      {"a refused ALLOW selecting other workloads leaves this one alone",
       withAction(ap("bad-db", "ALLOW", "[{}]", "{app: db}"), "CUSTOM"),
       client,
       9000,
       false,
       {},
       "/",
       true,
       "allowed: no ALLOW policy applies"},
      {"a refused DENY denies all",
       refused_deny,
       client,
       9000,
       false,
       {},
       "/",
       false,
       "denied: AuthorizationPolicy demo/bad-deny was refused and fails closed until it is fixed "
       "(AuthorizationPolicy demo/bad-deny: spec.rules[0].from[0].source.ipBlocks[0]: "
       "'10.0.0.0/33' has a bad prefix length (0 to 32))"},
      {"a refused dry-run policy is dropped (it never enforced anything)",
       dryRun("bad-shadow", "MAYBE", "[{}]"),
       client,
       9000,
       false,
       {},
       "/",
       true,
       "allowed: no ALLOW policy applies"},
  };
}

// The manifests' policies as the controller would distribute them: refused ones replaced by
// their stand-ins.
inline std::vector<model::AuthorizationPolicy> policiesOf(const std::string& manifests) {
  k8s::LoadResult r;
  r.addText(manifests, "test.yaml", k8s::DecodeOptions{});
  return r.all<model::AuthorizationPolicy>();
}

}  // namespace ferry::policy::testing
