// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The fake API server's writes over HTTP: create, replace, patch (JSON, merge, strategic,
// server-side apply) and delete, with the real server's checks on request bodies.
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "fakes/kube_api_server/discovery.h"
#include "fakes/kube_api_server/fake_api_server.h"
#include "fakes/kube_api_server/http_wire.h"
#include "fakes/kube_api_server/patch.h"
#include "fakes/kube_api_server/protobuf.h"
#include "fakes/kube_api_server/schema.h"

namespace ferry::fakes {
namespace {

using nlohmann::json;

// Kinds served from CustomResourceDefinitions in a real cluster (decoded as unstructured:
// kind and apiVersion are required, strategic merge patch is refused).
bool isCustom(const kube::Resource& r) {
  return !r.group.empty() && r.group != "discovery.k8s.io" && r.group != "coordination.k8s.io";
}

// metadata.name must be a DNS-1123 subdomain (most kinds) as apimachinery's validation says.
bool validName(const std::string& name) {
  static const std::regex kSubdomain(
      "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");
  return name.size() <= 253 && std::regex_match(name, kSubdomain);
}

// 422 Invalid with the field errors listed as the real server lists them (kubectl prints them).
FakeApiServer::Response invalid(const kube::Resource& r, const std::string& name,
                                const std::vector<FieldError>& errors) {
  const std::string kind = r.group.empty() ? r.kind : absl::StrCat(r.kind, ".", r.group);
  std::vector<std::string> texts;
  json causes = json::array();
  for (const FieldError& e : errors) {
    texts.push_back(absl::StrCat(e.field, ": ", e.message));
    causes.push_back({{"reason", e.reason}, {"message", e.message}, {"field", e.field}});
  }
  const std::string listed =
      texts.size() == 1 ? texts[0] : absl::StrCat("[", absl::StrJoin(texts, ", "), "]");
  FakeApiServer::Response resp =
      wire::failure(422, absl::StrCat(kind, " \"", name, "\" is invalid: ", listed));
  resp.body["details"] = {{"name", name}, {"group", r.group}, {"kind", r.kind}, {"causes", causes}};
  return resp;
}

FakeApiServer::Response invalid(const kube::Resource& r, const std::string& name,
                                const std::string& field, const std::string& reason,
                                const std::string& message) {
  return invalid(r, name, std::vector<FieldError>{{field, reason, message}});
}

}  // namespace

std::optional<FakeApiServer::Response> FakeApiServer::admitBody(const Target& target, json& body,
                                                                const Request& req) const {
  const kube::Resource& r = *target.resource;
  if (!body.is_object()) {
    return wire::failure(400, "the request body is not a JSON object");
  }
  const std::string kind = body.value("kind", "");
  const std::string api_version = body.value("apiVersion", "");
  if (!kind.empty() && kind != r.kind) {
    return wire::failure(
        400, absl::StrCat(kind, " in version \"", api_version, "\" cannot be handled as a ", r.kind,
                          ": no conversion from ", kind, " to ", r.kind));
  }
  if (isCustom(r) && kind.empty()) {
    return wire::failure(400, absl::StrCat("Object 'Kind' is missing in '", req.body, "'"));
  }
  if ((isCustom(r) || !api_version.empty()) && api_version != r.apiVersion()) {
    return wire::failure(
        400, absl::StrCat("the API version in the data (", api_version,
                          ") does not match the expected API version (", r.apiVersion(), ")"));
  }
  body["apiVersion"] = r.apiVersion();  // built-in kinds: defaulted from the URL
  body["kind"] = r.kind;
  if (!body.contains("metadata") || !body["metadata"].is_object()) {
    body["metadata"] = json::object();
  }
  if (r.namespaced) {
    const std::string ns = FakeApiServer::metaField(body, "namespace");
    if (!ns.empty() && ns != target.ns) {
      return wire::failure(400,
                           "the namespace of the provided object does not match the namespace "
                           "sent on the request");
    }
    body["metadata"]["namespace"] = target.ns;
  }
  std::string name = FakeApiServer::metaField(body, "name");
  if (!target.name.empty() && name != target.name) {
    return wire::failure(400,
                         absl::StrCat("the name of the object (", name,
                                      ") does not match the name on the URL (", target.name, ")"));
  }
  // Custom resources: pruned, defaulted and checked against the CRD's schema.
  if (!discovery_->crdVersion(r).is_null()) {
    SchemaCheck check = checkAgainstSchema(discovery_->schema(r), body);
    if (!check.unknown_fields.empty() && wire::queryParam(req, "fieldValidation") == "Strict") {
      std::vector<std::string> unknown;
      for (const std::string& f : check.unknown_fields) {
        unknown.push_back(absl::StrCat("unknown field \"", f, "\""));
      }
      return wire::failure(400,
                           absl::StrCat("strict decoding error: ", absl::StrJoin(unknown, ", ")));
    }
    if (!check.errors.empty()) {
      return invalid(r, name, check.errors);
    }
  }
  return std::nullopt;
}

std::optional<FakeApiServer::Response> FakeApiServer::requireNamespace(
    const kube::Resource& r, const std::string& ns) const {
  if (!options_.require_namespaces || !r.namespaced || get(kube::kNamespaces, "", ns)) {
    return std::nullopt;
  }
  FakeApiServer::Response resp =
      wire::failure(404, absl::StrCat("namespaces \"", ns, "\" not found"));
  resp.body["details"] = {{"name", ns}, {"kind", "namespaces"}};
  return resp;
}

// Name checks that need the server's state (generateName) happen at create time.
FakeApiServer::Response FakeApiServer::handleWrite(const Target& target, const Request& req) {
  const kube::Resource& r = *target.resource;
  const bool named = !target.name.empty();
  const bool dry_run = wire::queryParam(req, "dryRun") == "All";
  if (req.method == "DELETE" && named) {
    auto before = get(r, target.ns, target.name);
    if (dry_run && before) {
      return {200, *before};
    }
    absl::Status s = remove(r, target.ns, target.name);
    if (!s.ok()) {
      return wire::failure(s);
    }
    return {200, *before};
  }
  if (req.method == "PATCH" && named) {
    return handlePatch(target, req);
  }
  if (!((req.method == "POST" && !named) || (req.method == "PUT" && named))) {
    return wire::failure(405, absl::StrCat(req.method, " is not supported on ", req.path));
  }
  if (r.namespaced && target.ns.empty()) {
    return wire::failure(404, "the server could not find the requested resource");
  }
  if (req.method == "POST") {
    if (auto missing = requireNamespace(r, target.ns)) {
      return *missing;
    }
  }
  json body;
  if (auto ct = req.headers.find("content-type");
      ct != req.headers.end() && ct->second.find("protobuf") != std::string::npos) {
    absl::StatusOr<json> decoded = decodeProtobufObject(req.body);
    if (!decoded.ok()) {
      return wire::failure(decoded.status());  // 415 for kinds it cannot decode
    }
    body = std::move(*decoded);
  } else {
    body = json::parse(req.body, nullptr, false);
    if (body.is_discarded()) {
      return wire::failure(400, "couldn't get version/kind; json parse error");
    }
  }
  if (auto refused = admitBody(target, body, req)) {
    return *refused;
  }
  std::string name = FakeApiServer::metaField(body, "name");
  const std::string generate = FakeApiServer::metaField(body, "generateName");
  if (name.empty() && !generate.empty() && req.method == "POST") {
    std::lock_guard<std::mutex> lock(mu_);
    name = absl::StrCat(generate, absl::StrFormat("%05x", ++generated_names_ % 0xfffff));
    body["metadata"]["name"] = name;
  }
  if (name.empty()) {
    return invalid(r, name, "metadata.name", "FieldValueRequired",
                   "Required value: name or generateName is required");
  }
  if (!validName(name)) {
    return invalid(r, name, "metadata.name", "FieldValueInvalid",
                   absl::StrCat("Invalid value: \"", name,
                                "\": a lowercase RFC 1123 subdomain must consist of lower case "
                                "alphanumeric characters, '-' or '.', and must start and end "
                                "with an alphanumeric character"));
  }
  if (dry_run) {  // validated, not stored
    const bool exists = get(r, target.ns, name).has_value();
    if (exists == (req.method == "POST")) {
      return wire::failure(
          exists
              ? absl::AlreadyExistsError(absl::StrCat(r.plural, " \"", name, "\" already exists"))
              : absl::NotFoundError(absl::StrCat(r.plural, " \"", name, "\" not found")));
    }
    return {req.method == "POST" ? 201 : 200, body};
  }
  auto stored = req.method == "POST" ? create(std::move(body)) : update(std::move(body));
  if (!stored.ok()) {
    return wire::failure(stored.status());
  }
  return {req.method == "POST" ? 201 : 200, *stored};
}

FakeApiServer::Response FakeApiServer::handlePatch(const Target& target, const Request& req) {
  const kube::Resource& r = *target.resource;
  auto ct = req.headers.find("content-type");
  const PatchType type = patchTypeOf(ct == req.headers.end() ? "" : ct->second);
  if (type == PatchType::kUnsupported || (type == PatchType::kStrategic && isCustom(r))) {
    return wire::failure(415,
                         absl::StrCat("the body of the request was in an unknown format - "
                                      "accepted media types include: "
                                      "application/json-patch+json, "
                                      "application/merge-patch+json, ",
                                      isCustom(r) ? "" : "application/strategic-merge-patch+json, ",
                                      "application/apply-patch+yaml"));
  }
  std::optional<json> live = get(r, target.ns, target.name);
  json patched;
  if (type == PatchType::kApply) {
    const std::string manager = wire::queryParam(req, "fieldManager");
    if (manager.empty()) {
      return invalid(r, target.name, "fieldManager", "FieldValueRequired",
                     "Required value: is required for apply patch");
    }
    absl::StatusOr<json> applied = parseJsonOrYaml(req.body);
    if (!applied.ok()) {
      return wire::failure(applied.status());
    }
    if (auto refused = admitBody(target, *applied, req)) {
      return *refused;
    }
    const std::string key =
        absl::StrCat(r.collectionPath(), "|", target.ns, "/", target.name, "|", manager);
    json previous;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (live && applied_.count(key)) {
        previous = applied_[key];
      }
      if (wire::queryParam(req, "dryRun") != "All") {
        applied_[key] = *applied;
      }
    }
    if (!live && wire::queryParam(req, "dryRun") == "All") {
      return {201, *applied};
    }
    if (auto missing = requireNamespace(r, target.ns); !live && missing) {
      return *missing;
    }
    if (!live) {  // server-side apply creates
      auto stored = create(*applied);
      return stored.ok() ? Response{201, *stored} : wire::failure(stored.status());
    }
    patched = serverSideApply(*live, previous, *applied);
  } else {
    if (!live) {
      return wire::failure(404, absl::StrCat(r.plural, " \"", target.name, "\" not found"));
    }
    absl::StatusOr<json> result = applyPatch(*live, type, req.body);
    if (!result.ok()) {
      if (result.status().code() == absl::StatusCode::kFailedPrecondition) {
        return invalid(r, target.name, "patch", "FieldValueInvalid",
                       std::string(result.status().message()));
      }
      return wire::failure(result.status());
    }
    patched = std::move(*result);
  }
  if (auto refused = admitBody(target, patched, req)) {
    return *refused;
  }
  // A resourceVersion the patch sets is a precondition, as for a replace.
  const std::string want_rv = FakeApiServer::metaField(patched, "resourceVersion");
  if (want_rv.empty() || want_rv == FakeApiServer::metaField(*live, "resourceVersion")) {
    patched["metadata"]["resourceVersion"] = FakeApiServer::metaField(*live, "resourceVersion");
  }
  if (wire::queryParam(req, "dryRun") == "All") {
    return {200, patched};
  }
  auto stored = update(std::move(patched));
  return stored.ok() ? Response{200, *stored} : wire::failure(stored.status());
}

}  // namespace ferry::fakes
