// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "fakes/kube_api_server/discovery.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace ferry::fakes {
namespace {

using nlohmann::json;

constexpr char kServerVersion[] = "v1.32.0";

// Short names and categories of the built-in kinds, as kube-apiserver 1.32 reports them.
struct BuiltIn {
  const char* plural;
  std::vector<std::string> short_names;
  std::vector<std::string> categories;
};
const BuiltIn kBuiltIns[] = {
    {"pods", {"po"}, {"all"}},
    {"namespaces", {"ns"}, {}},
    {"serviceaccounts", {"sa"}, {}},
    {"services", {"svc"}, {"all"}},
    {"endpointslices", {}, {}},
    {"httproutes", {}, {"gateway-api"}},
    {"leases", {}, {}},
    {"secrets", {}, {}},
    {"configmaps", {"cm"}, {}},
};

std::string lower(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

json gvk(const kube::Resource& r) {
  return {{"group", r.group}, {"version", r.version}, {"kind", r.kind}};
}

// Built-in kinds get an open schema: clients learn the kind exists and that it has metadata,
// not every field (kubectl falls back to its compiled-in types for those).
json openSchema(const kube::Resource& r) {
  return {{"type", "object"},
          {"description", absl::StrCat(r.kind, " (schema abridged by the fake API server)")},
          {"properties",
           {{"apiVersion", {{"type", "string"}}},
            {"kind", {{"type", "string"}}},
            {"metadata", {{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}}}}},
          {"x-kubernetes-preserve-unknown-fields", true}};
}

std::string schemaName(const kube::Resource& r) {
  // The real server names schemas by Go package; a reversed-group name is close enough and
  // unique (io.k8s.api.core.v1.Pod, dev.ferry.security.v1alpha1.AuthorizationPolicy).
  std::vector<std::string> parts = absl::StrSplit(r.group.empty() ? "core" : r.group, '.');
  std::reverse(parts.begin(), parts.end());
  const std::string prefix = r.group.empty() ? "io.k8s.api.core" : absl::StrJoin(parts, ".");
  return absl::StrCat(prefix, ".", r.version, ".", r.kind);
}

json queryParam(const char* name) {
  return {{"name", name}, {"in", "query"}, {"schema", {{"type", "string"}, {"uniqueItems", true}}}};
}

}  // namespace

Discovery::Discovery(const std::vector<json>& crds) {
  for (const kube::Resource* r : kube::kKnownResources) {
    Kind k{r, lower(r->kind), {}, {}, nullptr, openSchema(*r)};
    for (const BuiltIn& b : kBuiltIns) {
      if (r->plural == b.plural) {
        k.short_names = b.short_names;
        k.categories = b.categories;
      }
    }
    for (const json& crd : crds) {
      const json spec = crd.value("spec", json::object());
      const json names = spec.value("names", json::object());
      if (spec.value("group", "") != r->group || names.value("plural", "") != r->plural) {
        continue;
      }
      k.short_names = names.value("shortNames", std::vector<std::string>{});
      k.categories = names.value("categories", std::vector<std::string>{});
      k.singular = names.value("singular", k.singular);
      for (const json& v : spec.value("versions", json::array())) {
        if (v.value("name", "") == r->version) {
          k.crd_version = v;
          if (v.contains("schema") && v["schema"].contains("openAPIV3Schema")) {
            k.schema = v["schema"]["openAPIV3Schema"];
          }
        }
      }
    }
    k.schema["x-kubernetes-group-version-kind"] = json::array({gvk(*r)});
    kinds_.push_back(std::move(k));
  }
}

const json& Discovery::crdVersion(const kube::Resource& resource) const {
  static const json kNull;
  for (const Kind& k : kinds_) {
    if (k.resource == &resource) {
      return k.crd_version;
    }
  }
  return kNull;
}

const json& Discovery::schema(const kube::Resource& resource) const {
  static const json kNull;
  for (const Kind& k : kinds_) {
    if (k.resource == &resource) {
      return k.schema;
    }
  }
  return kNull;
}

std::optional<json> Discovery::serve(const std::string& raw_path) const {
  // The real server's mux answers discovery paths with or without a trailing slash.
  const std::string path = raw_path.size() > 1 && raw_path.back() == '/'
                               ? raw_path.substr(0, raw_path.size() - 1)
                               : raw_path;
  if (path == "/version") {
    return json{{"major", "1"},
                {"minor", "32"},
                {"gitVersion", kServerVersion},
                {"gitCommit", "0000000000000000000000000000000000000000"},
                {"gitTreeState", "clean"},
                {"buildDate", "2026-01-01T00:00:00Z"},
                {"goVersion", "go1.23.0"},
                {"compiler", "gc"},
                {"platform", "linux/amd64"}};
  }
  if (path == "/api") {
    return json{{"kind", "APIVersions"},
                {"versions", {"v1"}},
                {"serverAddressByClientCIDRs",
                 {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", "127.0.0.1"}}}}};
  }
  if (path == "/api/v1") {
    return resourceList("v1");
  }
  if (path == "/apis") {
    json groups = json::array();
    std::vector<std::string> seen;
    for (const Kind& k : kinds_) {
      const std::string& g = k.resource->group;
      if (!g.empty() && std::find(seen.begin(), seen.end(), g) == seen.end()) {
        seen.push_back(g);
        groups.push_back(groupEntry(g));
      }
    }
    return json{{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}};
  }
  if (absl::StartsWith(path, "/apis/")) {
    const std::string rest = path.substr(6);
    const std::vector<std::string> parts = absl::StrSplit(rest, '/');
    if (parts.size() == 1) {
      json g = groupEntry(parts[0]);
      if (g["versions"].empty()) {
        return std::nullopt;
      }
      g["kind"] = "APIGroup";
      g["apiVersion"] = "v1";
      return g;
    }
    if (parts.size() == 2) {
      json list = resourceList(rest);
      return list["resources"].empty() ? std::nullopt : std::optional<json>(list);
    }
    return std::nullopt;
  }
  if (path == "/openapi/v3") {
    return openapiRoot();
  }
  if (absl::StartsWith(path, "/openapi/v3/")) {
    json doc = openapiDocument(path.substr(12));
    return doc["paths"].empty() ? std::nullopt : std::optional<json>(doc);
  }
  return std::nullopt;
}

json Discovery::groupEntry(const std::string& group) const {
  json versions = json::array();
  for (const Kind& k : kinds_) {
    if (k.resource->group != group) {
      continue;
    }
    json v = {{"groupVersion", k.resource->apiVersion()}, {"version", k.resource->version}};
    if (std::find(versions.begin(), versions.end(), v) == versions.end()) {
      versions.push_back(v);
    }
  }
  json entry = {{"name", group}, {"versions", versions}};
  if (!versions.empty()) {
    entry["preferredVersion"] = versions[0];
  }
  return entry;
}

json Discovery::resourceList(const std::string& group_version) const {
  json resources = json::array();
  for (const Kind& k : kinds_) {
    const kube::Resource& r = *k.resource;
    if (r.apiVersion() != group_version) {
      continue;
    }
    json entry = {{"name", r.plural},
                  {"singularName", k.singular},
                  {"namespaced", r.namespaced},
                  {"kind", r.kind},
                  {"verbs", {"create", "delete", "get", "list", "patch", "update", "watch"}}};
    if (!k.short_names.empty()) {
      entry["shortNames"] = k.short_names;
    }
    if (!k.categories.empty()) {
      entry["categories"] = k.categories;
    }
    resources.push_back(entry);
  }
  return {{"kind", "APIResourceList"},
          {"apiVersion", "v1"},
          {"groupVersion", group_version},
          {"resources", resources}};
}

json Discovery::openapiRoot() const {
  json paths = json::object();
  for (const Kind& k : kinds_) {
    const std::string key = k.resource->prefix().substr(1);  // "api/v1", "apis/<g>/<v>"
    paths[key] = {{"serverRelativeURL", absl::StrCat("/openapi/v3/", key, "?hash=fake")}};
  }
  return {{"paths", paths}};
}

// One path item per kind and scope with the operations kubectl inspects: PATCH carries the
// kind (x-kubernetes-group-version-kind), its fieldValidation parameter (kubectl then leaves
// validation to the server) and its patch content types (strategic merge only for built-ins).
json Discovery::openapiDocument(const std::string& group_version) const {
  json paths = json::object();
  json schemas = json::object();
  for (const Kind& k : kinds_) {
    const kube::Resource& r = *k.resource;
    if (r.prefix().substr(1) != group_version) {
      continue;
    }
    const std::string name = schemaName(r);
    schemas[name] = k.schema;
    const json ref = {{"$ref", absl::StrCat("#/components/schemas/", name)}};
    json content = {{"application/json-patch+json", {{"schema", {{"type", "object"}}}}},
                    {"application/merge-patch+json", {{"schema", {{"type", "object"}}}}},
                    {"application/apply-patch+yaml", {{"schema", {{"type", "object"}}}}}};
    // Built-in kinds take strategic merge patches, custom resources do not. The fake's open
    // schemas lack merge keys, so strategic merge stays unadvertised: kubectl then builds its
    // patches from its compiled-in types, exactly as it would against a real server that
    // published no OpenAPI. The server still accepts strategic merge for built-in kinds.
    auto op = [&](const char* action) {
      return json{
          {"x-kubernetes-group-version-kind", gvk(r)},
          {"x-kubernetes-action", action},
          {"parameters",
           {queryParam("dryRun"), queryParam("fieldManager"), queryParam("fieldValidation")}},
          {"responses",
           {{"200",
             {{"description", "OK"}, {"content", {{"application/json", {{"schema", ref}}}}}}}}}};
    };
    json item = {{"get", op("get")}, {"put", op("put")}, {"delete", op("delete")}};
    item["patch"] = op("patch");
    item["patch"]["requestBody"] = {{"content", content}};
    const std::string ns_path = r.namespaced ? "/namespaces/{namespace}" : "";
    paths[absl::StrCat(r.prefix(), ns_path, "/", r.plural, "/{name}")] = item;
    paths[absl::StrCat(r.prefix(), ns_path, "/", r.plural)] = {{"get", op("list")},
                                                               {"post", op("post")}};
  }
  return {{"openapi", "3.0.0"},
          {"info", {{"title", "Kubernetes"}, {"version", kServerVersion}}},
          {"paths", paths},
          {"components", {{"schemas", schemas}}}};
}

}  // namespace ferry::fakes
