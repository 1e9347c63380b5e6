// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Hostile and broken manifests: each row is refused with a reason naming the object and the
// field path, while the good objects around it in the same file still decode.
#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "k8s/loader.h"
#include "k8s/manifest_bombs.h"

namespace ferry::k8s {
namespace {

using Catch::Matchers::StartsWith;

struct Row {
  const char* description;
  const char* reason;    // the error message starts with this
  std::string manifest;  // the bad object
};

std::string policyWith(const std::string& spec) {
  return "apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n"
         "metadata:\n  name: bad\n  namespace: demo\nspec:\n" +
         spec;
}

std::string routeWith(const std::string& rules) {
  return "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
         "metadata:\n  name: bad\n  namespace: demo\nspec:\n"
         "  parentRefs: [{kind: Service, name: web, port: 80}]\n  rules:\n" +
         rules;
}

const char* kGoodBefore = R"(apiVersion: security.ferry.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: good-before, namespace: demo}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
)";

const char* kGoodAfter = R"(apiVersion: v1
kind: Pod
metadata: {name: good-after, namespace: demo, uid: u1}
spec: {serviceAccountName: web, nodeName: node1}
status: {podIPs: [{ip: 10.244.1.11}]}
)";

TEST_CASE("malformed manifests are refused with a clear reason, good ones still load",
          "[k8s][malformed]") {
  const std::vector<Row> rows = {
      {"methods as a map",
       "AuthorizationPolicy demo/bad: spec.rules[0].to[0].operation.methods: expected a list "
       "of strings, got a map",
       policyWith("  rules: [{to: [{operation: {methods: {GET: true}}}]}]\n")},
      {"unknown field in operation",
       "AuthorizationPolicy demo/bad: spec.rules[0].to[0].operation.method: unknown field",
       policyWith("  rules: [{to: [{operation: {method: [GET]}}]}]\n")},
      {"unknown field in spec", "AuthorizationPolicy demo/bad: spec.rule: unknown field",
       policyWith("  rule: []\n")},
      {"unknown action",
       "AuthorizationPolicy demo/bad: spec.action: 'REJECT' is not ALLOW, DENY or AUDIT",
       policyWith("  action: REJECT\n")},
      {"CUSTOM action", "AuthorizationPolicy demo/bad: spec.action: CUSTOM is not supported",
       policyWith("  action: CUSTOM\n")},
      {"bad CIDR",
       "AuthorizationPolicy demo/bad: spec.rules[0].from[0].source.ipBlocks[1]: '10.0.0.0/33' "
       "has a bad prefix length",
       policyWith("  rules: [{from: [{source: {ipBlocks: [10.0.0.0/8, 10.0.0.0/33]}}]}]\n")},
      {"CIDR that is not an address",
       "AuthorizationPolicy demo/bad: spec.rules[0].from[0].source.notIpBlocks[0]: "
       "'10.0.0.256' is not an IP address or CIDR",
       policyWith("  rules: [{from: [{source: {notIpBlocks: [10.0.0.256]}}]}]\n")},
      {"port out of range",
       "AuthorizationPolicy demo/bad: spec.rules[0].to[0].operation.ports[0]: '70000' is not a "
       "port number",
       policyWith("  rules: [{to: [{operation: {ports: [\"70000\"]}}]}]\n")},
      {"port zero",
       "AuthorizationPolicy demo/bad: spec.rules[0].to[0].operation.notPorts[0]: '0' is not a "
       "port number",
       policyWith("  rules: [{to: [{operation: {notPorts: [\"0\"]}}]}]\n")},
      {"wildcard in the middle",
       "AuthorizationPolicy demo/bad: spec.rules[0].to[0].operation.paths[0]: '/a*b': '*' is "
       "only allowed",
       policyWith("  rules: [{to: [{operation: {paths: [\"/a*b\"]}}]}]\n")},
      {"path template",
       "AuthorizationPolicy demo/bad: spec.rules[0].to[0].operation.paths[0]: '/api/{*}/x': "
       "path templates",
       policyWith("  rules: [{to: [{operation: {paths: [\"/api/{*}/x\"]}}]}]\n")},
      {"relative path",
       "AuthorizationPolicy demo/bad: spec.rules[0].to[0].operation.paths[0]: 'admin' must "
       "start with '/'",
       policyWith("  rules: [{to: [{operation: {paths: [admin]}}]}]\n")},
      {"empty principal",
       "AuthorizationPolicy demo/bad: spec.rules[0].from[0].source.principals[0]: empty value",
       policyWith("  rules: [{from: [{source: {principals: [\"\"]}}]}]\n")},
      {"serviceAccounts without a namespace",
       "AuthorizationPolicy demo/bad: spec.rules[0].from[0].source.serviceAccounts[0]: 'client' "
       "is not <namespace>/<serviceaccount>",
       policyWith("  rules: [{from: [{source: {serviceAccounts: [client]}}]}]\n")},
      {"notServiceAccounts with a wildcard",
       "AuthorizationPolicy demo/bad: spec.rules[0].from[0].source.notServiceAccounts[0]: "
       "'demo/*' is not <namespace>/<serviceaccount>",
       policyWith("  rules: [{from: [{source: {notServiceAccounts: ['demo/*']}}]}]\n")},
      {"dry-run annotation that is not a boolean",
       "AuthorizationPolicy demo/bad: metadata.annotations[istio.io/dry-run]: 'yes' is not "
       "\"true\" or \"false\"",
       "apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n"
       "metadata: {name: bad, namespace: demo, annotations: {istio.io/dry-run: 'yes'}}\n"
       "spec: {}\n"},
      {"unknown when key",
       "AuthorizationPolicy demo/bad: spec.rules[0].when[0].key: unknown key 'request.header'",
       policyWith("  rules: [{when: [{key: request.header, values: [x]}]}]\n")},
      {"when without values",
       "AuthorizationPolicy demo/bad: spec.rules[0].when[0]: needs values or notValues",
       policyWith("  rules: [{when: [{key: source.ip}]}]\n")},
      {"when source.ip not a CIDR",
       "AuthorizationPolicy demo/bad: spec.rules[0].when[0].values[0]: 'nowhere' is not an IP",
       policyWith("  rules: [{when: [{key: source.ip, values: [nowhere]}]}]\n")},
      {"when destination.port out of range",
       "AuthorizationPolicy demo/bad: spec.rules[0].when[0].notValues[0]: '65536' is not a port",
       policyWith("  rules: [{when: [{key: destination.port, notValues: [\"65536\"]}]}]\n")},
      {"rules not a list", "AuthorizationPolicy demo/bad: spec.rules: expected a list, got a map",
       policyWith("  rules: {from: []}\n")},
      {"selector with matchExpressions",
       "AuthorizationPolicy demo/bad: spec.selector.matchExpressions: unknown field",
       policyWith("  selector: {matchExpressions: []}\n")},
      {"label value of a map",
       "AuthorizationPolicy demo/bad: spec.selector.matchLabels: expected a map of strings",
       policyWith("  selector: {matchLabels: {app: {name: web}}}\n")},
      {"duplicate field", "AuthorizationPolicy demo/bad: spec: duplicate field 'action'",
       policyWith("  action: ALLOW\n  action: DENY\n")},
      {"typo in metadata", "AuthorizationPolicy demo/bad: metadata.lables: unknown field",
       "apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n"
       "metadata: {name: bad, namespace: demo, lables: {a: b}}\nspec: {}\n"},
      {"Istio apiVersion",
       "AuthorizationPolicy demo/bad: apiVersion: 'security.istio.io/v1' is not a version Ferry "
       "reads",
       "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
       "metadata: {name: bad, namespace: demo}\nspec: {}\n"},
      {"bad object name", "AuthorizationPolicy demo/Bad_Name: metadata.name: ",
       "apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n"
       "metadata: {name: Bad_Name, namespace: demo}\nspec: {}\n"},
      {"unknown mTLS mode",
       "PeerAuthentication demo/bad: spec.mtls.mode: 'STRICTER' is not UNSET, STRICT",
       "apiVersion: security.ferry.dev/v1alpha1\nkind: PeerAuthentication\n"
       "metadata: {name: bad, namespace: demo}\nspec: {mtls: {mode: STRICTER}}\n"},
      {"port-level mTLS on a bad port",
       "PeerAuthentication demo/bad: spec.portLevelMtls[99999]: '99999' is not a port number",
       "apiVersion: security.ferry.dev/v1alpha1\nkind: PeerAuthentication\n"
       "metadata: {name: bad, namespace: demo}\n"
       "spec: {selector: {matchLabels: {app: db}}, portLevelMtls: {99999: {mode: DISABLE}}}\n"},
      {"bad path regex",
       "HTTPRoute demo/bad: spec.rules[0].matches[0].path.value: bad regular expression '/a(b'",
       routeWith("  - matches: [{path: {type: RegularExpression, value: \"/a(b\"}}]\n"
                 "    backendRefs: [{name: web-v1, port: 80}]\n")},
      {"bad header regex",
       "HTTPRoute demo/bad: spec.rules[0].matches[0].headers[0].value: bad regular expression",
       routeWith("  - matches: [{headers: [{type: RegularExpression, name: x, value: \"[z-a]\"}]}]"
                 "\n")},
      {"backend port out of range",
       "HTTPRoute demo/bad: spec.rules[0].backendRefs[0].port: 65536 is out of range",
       routeWith("  - backendRefs: [{name: web-v1, port: 65536}]\n")},
      {"backend port as a string",
       "HTTPRoute demo/bad: spec.rules[0].backendRefs[0].port: expected an integer, got a "
       "quoted string",
       routeWith("  - backendRefs: [{name: web-v1, port: \"80\"}]\n")},
      {"negative weight",
       "HTTPRoute demo/bad: spec.rules[0].backendRefs[0].weight: -1 is out of range",
       routeWith("  - backendRefs: [{name: web-v1, port: 80, weight: -1}]\n")},
      {"unsupported filter",
       "HTTPRoute demo/bad: spec.rules[0].filters[0].type: filter type 'Lua' is not a Gateway "
       "API v1.0 standard filter",
       routeWith("  - filters: [{type: Lua}]\n")},
      {"bad duration",
       "HTTPRoute demo/bad: spec.rules[0].timeouts.request: '5 seconds' is not a Gateway API "
       "duration",
       routeWith("  - timeouts: {request: 5 seconds}\n")},
      {"backendRequest longer than request",
       "HTTPRoute demo/bad: spec.rules[0].timeouts.backendRequest: must not be longer than "
       "request",
       routeWith("  - timeouts: {request: 1s, backendRequest: 2s}\n")},
      {"retry code out of range",
       "HTTPRoute demo/bad: spec.rules[0].retry.codes[0]: 200 is out of range (400 to 599)",
       routeWith("  - retry: {attempts: 2, codes: [200]}\n")},
      {"unknown method", "HTTPRoute demo/bad: spec.rules[0].matches[0].method: 'FETCH' is not GET",
       routeWith("  - matches: [{method: FETCH}]\n")},
      {"unknown field in a match",
       "HTTPRoute demo/bad: spec.rules[0].matches[0].paths: unknown field",
       routeWith("  - matches: [{paths: {value: /}}]\n")},
      {"service port out of range",
       "Service demo/bad: spec.ports[0].port: 0 is out of range (1 to 65535)",
       "apiVersion: v1\nkind: Service\nmetadata: {name: bad, namespace: demo}\n"
       "spec: {ports: [{port: 0}]}\n"},
      {"service clusterIP not an address",
       "Service demo/bad: spec.clusterIP: '10.96.0.300' is not an IP address",
       "apiVersion: v1\nkind: Service\nmetadata: {name: bad, namespace: demo}\n"
       "spec: {clusterIP: 10.96.0.300}\n"},
      {"pod IP not an address",
       "Pod demo/bad: status.podIPs[0].ip: 'fd00::zz' is not an IP address",
       "apiVersion: v1\nkind: Pod\nmetadata: {name: bad, namespace: demo}\n"
       "status: {podIPs: [{ip: \"fd00::zz\"}]}\n"},
      {"endpoint of the wrong family",
       "EndpointSlice demo/bad: endpoints[0].addresses[0]: 'fd00::1' is not an IPv4 address",
       "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: bad, namespace: "
       "demo}\naddressType: IPv4\nendpoints: [{addresses: [\"fd00::1\"]}]\n"},
      {"kind Ferry does not read", "kind 'Deployment' is not one Ferry reads",
       "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad, namespace: demo}\n"},
      {"missing name", "AuthorizationPolicy <unnamed>: metadata.name: required field is missing",
       "apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n"
       "metadata: {namespace: demo}\nspec: {}\n"},
      {"not a map", "expected an object", "- just\n- a list\n"},
      {"a ',' after a root flow collection (hangs yaml-cpp 0.7, found by fuzzing)",
       "bad.yaml, document 2: not valid YAML: line 1: a ',' outside any flow collection",
       "{\"apiVersion\": \"v1\", \"kind\": \"Namespace\"},\n"},
      {"a ',' after a root quoted scalar",
       "bad.yaml, document 2: not valid YAML: line 2: a ',' outside any flow collection",
       "# comment\n'x' ,\n"},
      {"a ',' where a node should start (hangs yaml-cpp 0.7, found by fuzzing)",
       "bad.yaml, document 2: not valid YAML: line 2: a ',' outside any flow collection", "\n,~\n"},
      {"a ',' after an anchor (hangs yaml-cpp 0.7, found by fuzzing)",
       "bad.yaml, document 2: not valid YAML: line 1: a ',' outside any flow collection", "&a ,\n"},
      {"an anchor, a lone CR, a ',' (hangs yaml-cpp 0.7 unless CR is a line break; fuzzing)",
       "expected an object (a map with apiVersion and kind)", "&w\r-,\n"},
      {"a NUL byte (hangs yaml-cpp 0.7 before a ','; found by fuzzing)",
       "bad.yaml, document 2: not valid YAML: line 2: control character 0x00 (YAML allows only "
       "tab, LF and CR)",
       std::string("# comment\n\0,~L\n", 15)},
      {"broken YAML", "bad.yaml, document 2: not valid YAML",
       "apiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n"},
  };
  for (const auto& row : rows) {
    SECTION(row.description) {
      // StrCat, not a chain of +: GCC 12 at -O2 reports a false -Warray-bounds on the chain.
      std::string file = absl::StrCat(kGoodBefore, "---\n", row.manifest, "---\n", kGoodAfter);
      LoadResult r;
      r.addText(file, "bad.yaml", DecodeOptions{});
      REQUIRE(r.errors.size() == 1);
      CHECK_THAT(r.errors[0].message, StartsWith(row.reason));
      CHECK(r.errors[0].source.rfind("bad.yaml, document 2", 0) == 0);
      // The objects on both sides of the bad one are unaffected.
      CHECK(r.objects.count(ObjectRef{Kind::kAuthorizationPolicy, {"demo", "good-before"}}) == 1);
      CHECK(r.objects.count(ObjectRef{Kind::kPod, {"demo", "good-after"}}) == 1);
      // A refused AuthorizationPolicy that can be named leaves a deny-all stand-in in its place
      // (policy::refusedStandIn); nothing else takes the place of a refused object.
      size_t stand_ins = 0;
      for (const auto& [ref, decoded] : r.objects) {
        const auto* p = std::get_if<model::AuthorizationPolicy>(&decoded.object);
        if (p != nullptr && !p->refused.empty()) {
          ++stand_ins;
          CHECK(p->refused == r.errors[0].message);
          CHECK(p->action == model::PolicyAction::kDeny);
        }
      }
      const bool named_policy =
          r.errors[0].ref.has_value() && r.errors[0].ref->kind == Kind::kAuthorizationPolicy;
      CHECK(stand_ins == (named_policy ? 1u : 0u));
      CHECK(r.objects.size() == 2 + stand_ins);
    }
  }
}

struct BudgetRow {
  const char* description;
  const char* reason;  // after "bad.yaml: "
  std::string manifest;
};

TEST_CASE("a file over the alias or object budget is refused as a whole, with the limit",
          "[k8s][malformed]") {
  const std::vector<BudgetRow> rows = {
      {"List items that are Lists of aliases (960 bytes, 10^9 objects expanded)",
       "more than 250000 YAML nodes", testing::listBomb()},
      {"typed List (NamespaceList) items that alias a List bomb", "more than 250000 YAML nodes",
       "apiVersion: v1\nkind: NamespaceList\nitems: [*l9, *l9]\n---\n" + testing::listBomb()},
      {"nested aliases inside one policy's rules", "more than 250000 YAML nodes",
       testing::policyBomb()},
      {"aliases in a document the decoder would skip (counted all the same)",
       "more than 250000 YAML nodes",
       "unknown: &u [[a, b, c, d, e, f, g, h, i, j], [k, l, m, n, o, p, q, r, s, t]]\n"
       "more: &m [*u, *u, *u, *u, *u, *u, *u, *u, *u, *u]\n"
       "still: &s [*m, *m, *m, *m, *m, *m, *m, *m, *m, *m]\n"
       "and: &t [*s, *s, *s, *s, *s, *s, *s, *s, *s, *s]\n"
       "last: [*t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t, *t]\n"},
      {"an alias inside the node it names (a cycle)", "more than 250000 YAML nodes",
       "apiVersion: v1\nkind: List\nitems: &c [{kind: List, items: *c}]\n"},
      {"a flat flow list of 300,000 one-character scalars (no alias at all)",
       "more than 250000 entries in flow collections", testing::flatList(300'000)},
      {"a block list of 300,000 one-character scalars (no alias at all)",
       "more than 250000 YAML nodes", testing::blockList(300'000)},
      {"over the object count (10,001 List items, well under the node budget)",
       "more than 10000 objects (documents and List items)", testing::manyObjects(10'001)},
  };
  for (const auto& row : rows) {
    SECTION(row.description) {
      // The bomb sits between two good objects: the file goes as a whole.
      std::string file = std::string(kGoodBefore) + "---\n" + row.manifest + "---\n" + kGoodAfter;
      LoadResult r;
      r.addText(file, "bad.yaml", DecodeOptions{});
      REQUIRE(r.errors.size() == 1);
      CHECK_THAT(r.errors[0].message, StartsWith(std::string("bad.yaml: ") + row.reason));
      CHECK_THAT(r.errors[0].message, Catch::Matchers::EndsWith("the whole file is refused "
                                                                "(split it)"));
      CHECK(r.errors[0].source == "bad.yaml");
      CHECK(r.objects.empty());
      CHECK(r.refused_files == std::set<std::string>{"bad.yaml"});
    }
  }
  SECTION("the largest shapes under the budgets still load") {
    LoadResult r;
    r.addText(testing::manyObjects(10'000), "ok.yaml", DecodeOptions{});
    CHECK(r.refused_files.empty());
    CHECK(r.objects.size() == 1);     // one Namespace, the other 9,999 are its duplicates
    CHECK(r.errors.size() == 9'999);  // each refused as a duplicate, by name
  }
}

}  // namespace
}  // namespace ferry::k8s
