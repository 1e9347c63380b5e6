// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// decodeJsonObject (what the controller's Kubernetes source decodes API objects with) against
// decodeObjectText of the same object's text: the same result or the same refusal, the node
// budget included at its exact boundary.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "k8s/decode.h"

namespace ferry::k8s {
namespace {

using nlohmann::json;

// The same status and, when decoded, the same reference.
void requireSameAsText(const json& object) {
  auto from_json = decodeJsonObject(object);
  auto from_text = decodeObjectText(object.dump());
  INFO(object.dump().substr(0, 200));
  REQUIRE(from_json.status() == from_text.status());
  if (from_json.ok()) {
    CHECK(from_json->ref == from_text->ref);
    CHECK(from_json->object.index() == from_text->object.index());
  }
}

TEST_CASE("an object parsed as JSON decodes exactly as its text does", "[k8s]") {
  const json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"name", "a"}, {"namespace", "demo"}, {"uid", "u1"}, {"labels", {{"app", "a"}}}}},
      {"spec", {{"nodeName", "node1"}, {"serviceAccountName", "sa"}}},
      {"status", {{"podIP", "10.0.0.1"}, {"podIPs", {{{"ip", "10.0.0.1"}}}}}}};
  const json policy = {
      {"apiVersion", "security.istio.io/v1"},
      {"kind", "AuthorizationPolicy"},
      {"metadata", {{"name", "p"}, {"namespace", "demo"}}},
      {"spec",
       {{"action", "DENY"},
        {"rules", {{{"from", {{{"source", {{"principals", {"cluster.local/ns/x/sa/y"}}}}}}}}}}}}};
  json bad_action = policy;
  bad_action["spec"]["action"] = "MAYBE";
  json unknown_field = pod;
  unknown_field["spec"]["bogus"] = 1;
  json control_character = pod;
  control_character["metadata"]["labels"]["app"] = "a\x7f";
  for (const json& row : {pod, policy, bad_action, unknown_field, control_character, json::object(),
                          json::array(), json("text")}) {
    requireSameAsText(row);
  }
}

TEST_CASE("the node budget of an object parsed as JSON is the one its text would get", "[k8s]") {
  // A Namespace with a long list: its node count crosses kMaxManifestNodes at one length.
  json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "x"}}}};
  ns["metadata"]["annotations"] = json::object();
  bool refused_for_nodes = false, within = false;
  for (size_t n = kMaxManifestNodes - 14; n <= kMaxManifestNodes - 6; ++n) {
    ns["extra"] = json::array();
    ns["extra"].get_ref<json::array_t&>().assign(n, 0);
    requireSameAsText(ns);
    auto d = decodeJsonObject(ns);
    if (!d.ok() && std::string(d.status().message()).find("YAML nodes") != std::string::npos) {
      refused_for_nodes = true;
    } else {
      within = true;
    }
  }
  // The boundary lies inside the range tried.
  CHECK(refused_for_nodes);
  CHECK(within);
}

}  // namespace
}  // namespace ferry::k8s
