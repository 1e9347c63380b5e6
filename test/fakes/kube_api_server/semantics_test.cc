// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The fake API server's selector and patch semantics, row by row, against what the real
// server does (apimachinery's labels/fields packages and strategicpatch).
#include <catch2/catch.hpp>

#include "fakes/kube_api_server/objects.h"
#include "fakes/kube_api_server/patch.h"
#include "fakes/kube_api_server/schema.h"
#include "fakes/kube_api_server/selectors.h"

namespace ferry::fakes {
namespace {

using nlohmann::json;

TEST_CASE("label and field selectors: matches and refusals") {
  const json web =
      testing::podJson("default", "web", "node-a", "10.0.0.1", {{"app", "web"}, {"tier", "front"}});
  struct Row {
    const char* labels;
    const char* fields;
    bool parses;
    bool matches;
  };
  const Row rows[] = {
      {"", "", true, true},
      {"app=web", "", true, true},
      {"app==web", "", true, true},
      {"app!=web", "", true, false},
      {"app!=api", "", true, true},
      {"env!=prod", "", true, true},  // absent label: != matches
      {"app in (api,web)", "", true, true},
      {"app in (api, db)", "", true, false},
      {"app notin (api)", "", true, true},
      {"env notin (prod)", "", true, true},
      {"tier", "", true, true},
      {"!tier", "", true, false},
      {"!env", "", true, true},
      {"app=web,tier=back", "", true, false},
      {"app=web,!env,tier in (front)", "", true, true},
      {"app in api", "", false, false},
      {"app in (web", "", false, false},
      {",", "", false, false},
      {"", "metadata.name=web", true, true},
      {"", "metadata.name!=web", true, false},
      {"", "metadata.namespace==default", true, true},
      {"", "spec.nodeName=node-a,status.phase=Running", true, true},
      {"", "spec.nodeName=node-b", true, false},
      {"", "spec.containers=x", false, false},  // not a Pod field label
      {"", "metadata.name", false, false},
      {"app=web", "spec.nodeName=node-a", true, true},
  };
  for (const Row& row : rows) {
    INFO("labels '" << row.labels << "' fields '" << row.fields << "'");
    absl::StatusOr<Selector> s = Selector::parse(row.labels, row.fields, kube::kPods);
    CHECK(s.ok() == row.parses);
    if (s.ok()) {
      CHECK(s->matches(web) == row.matches);
    }
  }
  // Field labels depend on the kind: spec.nodeName is a Pod's, not a Service's.
  CHECK_FALSE(Selector::parse("", "spec.nodeName=a", kube::kServices).ok());
  CHECK(Selector::parse("", "type=Opaque", kube::kSecrets).ok());
}

TEST_CASE("strategic merge: lists merge by key, directives apply") {
  const json pod = testing::podJson("default", "web", "node-a", "10.0.0.1", {{"app", "web"}});
  struct Row {
    const char* name;
    json patch;
    const char* pointer;
    json expected;
  };
  const Row rows[] = {
      {"a new container is appended, the old one kept",
       {{"spec", {{"containers", {{{"name", "side"}, {"image", "s:1"}}}}}}},
       "/spec/containers",
       json::array({{{"name", "app"}, {"image", "app:1"}}, {{"name", "side"}, {"image", "s:1"}}})},
      {"a container with the same name is merged",
       {{"spec", {{"containers", {{{"name", "app"}, {"image", "app:2"}}}}}}},
       "/spec/containers",
       json::array({{{"name", "app"}, {"image", "app:2"}}})},
      {"$patch: delete removes the keyed element",
       {{"spec", {{"containers", {{{"name", "app"}, {"$patch", "delete"}}}}}}},
       "/spec/containers",
       json::array()},
      {"$patch: replace in a list replaces it",
       {{"spec",
         {{"containers", {{{"$patch", "replace"}}, {{"name", "only"}, {"image", "o:1"}}}}}}},
       "/spec/containers",
       json::array({{{"name", "only"}, {"image", "o:1"}}})},
      {"null deletes a field",
       {{"metadata", {{"labels", {{"app", nullptr}}}}}},
       "/metadata/labels",
       json::object()},
      {"$setElementOrder is a directive, not a field",
       {{"spec", {{"$setElementOrder/containers", {{{"name", "app"}}}}}}},
       "/spec/containers/0/name",
       "app"},
      {"$deleteFromPrimitiveList removes scalars",
       {{"metadata", {{"$deleteFromPrimitiveList/finalizers", {"a"}}}}},
       "/metadata/finalizers",
       json::array({"b"})},
      {"$retainKeys drops the keys not listed",
       {{"spec", {{"$retainKeys", {"containers"}}}}},
       "/spec",
       {{"containers", {{{"name", "app"}, {"image", "app:1"}}}}}},
      {"status.podIPs merge on ip",
       {{"status", {{"podIPs", {{{"ip", "10.0.0.2"}}}}}}},
       "/status/podIPs",
       json::array({{{"ip", "10.0.0.1"}}, {{"ip", "10.0.0.2"}}})},
      {"lists without a merge key are replaced",
       {{"spec", {{"tolerations", {{{"key", "b"}}}}}}},
       "/spec/tolerations",
       json::array({{{"key", "b"}}})},
  };
  for (const Row& row : rows) {
    INFO(row.name);
    json live = pod;
    live["metadata"]["finalizers"] = {"a", "b"};
    live["spec"]["tolerations"] = {{{"key", "a"}}};
    const json merged = strategicMerge(live, row.patch);
    CHECK(merged.at(json::json_pointer(row.pointer)) == row.expected);
  }
}

TEST_CASE("JSON and merge patches: malformed 400, unappliable 422, applied otherwise") {
  const json pod = testing::podJson("default", "web", "node-a", "10.0.0.1", {{"app", "web"}});
  CHECK(applyPatch(pod, PatchType::kJson, "{").status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(applyPatch(pod, PatchType::kJson, R"({"op":"add"})").status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(applyPatch(pod, PatchType::kJson, R"([{"op":"test","path":"/kind","value":"Service"}])")
            .status()
            .code() == absl::StatusCode::kFailedPrecondition);
  auto replaced = applyPatch(pod, PatchType::kJson,
                             R"([{"op":"replace","path":"/spec/nodeName","value":"b"}])");
  REQUIRE(replaced.ok());
  CHECK((*replaced)["spec"]["nodeName"] == "b");
  auto merged = applyPatch(pod, PatchType::kMerge, R"({"spec":{"containers":[{"name":"x"}]}})");
  REQUIRE(merged.ok());
  CHECK((*merged)["spec"]["containers"] == json::array({{{"name", "x"}}}));  // RFC 7386: replaced
  CHECK(patchTypeOf("application/merge-patch+json; charset=utf-8") == PatchType::kMerge);
  CHECK(patchTypeOf("application/json") == PatchType::kUnsupported);
}

TEST_CASE("server-side apply removes what the same manager stopped applying") {
  json live = {{"metadata", {{"name", "p"}, {"labels", {{"a", "1"}, {"b", "2"}, {"other", "x"}}}}},
               {"spec", {{"action", "ALLOW"}}}};
  const json previous = {{"metadata", {{"name", "p"}, {"labels", {{"a", "1"}, {"b", "2"}}}}},
                         {"spec", {{"action", "ALLOW"}}}};
  const json applied = {{"metadata", {{"name", "p"}, {"labels", {{"a", "1"}}}}},
                        {"spec", {{"action", "DENY"}}}};
  const json result = serverSideApply(live, previous, applied);
  CHECK(result["metadata"]["labels"] == json{{"a", "1"}, {"other", "x"}});  // "other" not ours
  CHECK(result["spec"]["action"] == "DENY");
  // A first apply (no previous) only adds.
  CHECK(serverSideApply(live, nullptr, applied)["metadata"]["labels"].size() == 3);
}

TEST_CASE("apply bodies may be YAML") {
  auto parsed = parseJsonOrYaml("kind: Pod\nmetadata:\n  name: web\n  labels: {n: \"1\"}\nx: 2\n");
  REQUIRE(parsed.ok());
  CHECK((*parsed)["metadata"]["labels"]["n"] == "1");  // quoted stays a string
  CHECK((*parsed)["x"] == 2);
  CHECK_FALSE(parseJsonOrYaml("a: [1, 2").ok());
}

TEST_CASE("custom resources against a structural schema: prune, default, field errors") {
  const json schema = json::parse(R"({
    "type": "object",
    "properties": {
      "spec": {"type": "object", "required": ["mode"], "properties": {
        "mode": {"type": "string", "enum": ["A", "B"], "default": "A"},
        "name": {"type": "string", "maxLength": 3, "pattern": "^[a-z]+$"},
        "ports": {"type": "array", "maxItems": 2, "items": {"type": "integer", "maximum": 9}},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}})");
  struct Row {
    const char* spec;
    std::vector<std::string> unknown;
    std::vector<std::string> error_fields;
  };
  const Row rows[] = {
      {R"({"mode":"B"})", {}, {}},
      {R"({})", {}, {}},  // mode defaulted, so not missing
      {R"({"mode":"C"})", {}, {"spec.mode"}},
      {R"({"mode":1})", {}, {"spec.mode"}},
      {R"({"name":"abcd"})", {}, {"spec.name"}},
      {R"({"name":"AB"})", {}, {"spec.name"}},
      {R"({"ports":[1,2,3]})", {}, {"spec.ports"}},
      {R"({"ports":[1,10]})", {}, {"spec.ports[1]"}},
      {R"({"labels":{"a":"b","c":1}})", {}, {"spec.labels.c"}},
      {R"({"extra":1,"free":{"anything":{"x":1}}})", {"spec.extra"}, {}},
  };
  for (const Row& row : rows) {
    INFO(row.spec);
    json object = {{"apiVersion", "x/v1"},
                   {"kind", "X"},
                   {"metadata", {{"name", "n"}}},
                   {"spec", json::parse(row.spec)}};
    const SchemaCheck check = checkAgainstSchema(schema, object);
    std::vector<std::string> fields;
    for (const FieldError& e : check.errors) {
      fields.push_back(e.field);
    }
    CHECK(check.unknown_fields == row.unknown);
    CHECK(fields == row.error_fields);
    CHECK_FALSE(object["spec"].contains("extra"));  // pruned
    if (check.errors.empty()) {
      CHECK(object["spec"].contains("mode"));  // given or defaulted
    }
  }
}

}  // namespace
}  // namespace ferry::fakes
