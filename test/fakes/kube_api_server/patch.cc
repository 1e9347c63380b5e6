// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "fakes/kube_api_server/patch.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ferry::fakes {
namespace {

using nlohmann::json;

// patchMergeKey of the lists in the built-in kinds Ferry uses, by path of field names (list
// elements add no segment). Lists absent here are atomic: a patch replaces them.
const std::map<std::string, std::string>& mergeKeys() {
  static const auto* keys = new std::map<std::string, std::string>{
      {"spec.containers", "name"},
      {"spec.initContainers", "name"},
      {"spec.ephemeralContainers", "name"},
      {"spec.containers.ports", "containerPort"},
      {"spec.initContainers.ports", "containerPort"},
      {"spec.containers.env", "name"},
      {"spec.initContainers.env", "name"},
      {"spec.containers.volumeMounts", "mountPath"},
      {"spec.initContainers.volumeMounts", "mountPath"},
      {"spec.volumes", "name"},
      {"spec.imagePullSecrets", "name"},
      {"spec.hostAliases", "ip"},
      {"spec.ports", "port"},  // Service
      {"status.conditions", "type"},
      {"status.podIPs", "ip"},
      {"metadata.ownerReferences", "uid"},
      {"secrets", "name"},  // ServiceAccount
  };
  return *keys;
}

// Lists of scalars merged as sets (patchStrategy "merge").
bool mergedScalarList(const std::string& path) {
  return path == "metadata.finalizers";
}

std::string child(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

json mergeAt(const json& original, const json& patch, const std::string& path);

json mergeList(const json& original, const json& patch, const std::string& key,
               const std::string& path) {
  json result = original.is_array() ? original : json::array();
  for (const json& p : patch) {
    if (p.is_object() && p.value("$patch", "") == "replace") {
      json replaced = json::array();
      for (const json& q : patch) {
        if (!(q.is_object() && q.contains("$patch"))) {
          replaced.push_back(q);
        }
      }
      return replaced;
    }
  }
  for (const json& p : patch) {
    if (!p.is_object() || !p.contains(key)) {
      result.push_back(p);
      continue;
    }
    auto it = std::find_if(result.begin(), result.end(), [&](const json& e) {
      return e.is_object() && e.contains(key) && e[key] == p[key];
    });
    if (p.value("$patch", "") == "delete") {
      if (it != result.end()) {
        result.erase(it);
      }
    } else if (it != result.end()) {
      *it = mergeAt(*it, p, path);
    } else {
      json added = p;
      added.erase("$patch");
      result.push_back(mergeAt(json::object(), added, path));
    }
  }
  return result;
}

json mergeAt(const json& original, const json& patch, const std::string& path) {
  if (!patch.is_object()) {
    return patch;
  }
  if (patch.value("$patch", "") == "replace") {
    json replaced = patch;
    replaced.erase("$patch");
    return replaced;
  }
  json result = original.is_object() ? original : json::object();
  if (patch.contains("$retainKeys") && patch["$retainKeys"].is_array()) {
    for (auto it = result.begin(); it != result.end();) {
      const auto& keep = patch["$retainKeys"];
      it = std::find(keep.begin(), keep.end(), it.key()) == keep.end() ? result.erase(it)
                                                                       : std::next(it);
    }
  }
  for (const auto& [k, v] : patch.items()) {
    if (k == "$patch" || k == "$retainKeys" || absl::StartsWith(k, "$setElementOrder/")) {
      continue;
    }
    if (absl::StartsWith(k, "$deleteFromPrimitiveList/")) {
      const std::string field = k.substr(k.find('/') + 1);
      if (result.contains(field) && result[field].is_array() && v.is_array()) {
        json kept = json::array();
        for (const json& e : result[field]) {
          if (std::find(v.begin(), v.end(), e) == v.end()) {
            kept.push_back(e);
          }
        }
        result[field] = kept;
      }
      continue;
    }
    const std::string here = child(path, k);
    if (v.is_null()) {
      result.erase(k);
    } else if (v.is_object() && v.value("$patch", "") == "delete") {
      result.erase(k);
    } else if (v.is_array() && mergeKeys().count(here)) {
      result[k] = mergeList(result.value(k, json::array()), v, mergeKeys().at(here), here);
    } else if (v.is_array() && mergedScalarList(here) && result.contains(k) &&
               result[k].is_array()) {
      for (const json& e : v) {
        if (std::find(result[k].begin(), result[k].end(), e) == result[k].end()) {
          result[k].push_back(e);
        }
      }
    } else if (v.is_object()) {
      result[k] = mergeAt(result.contains(k) ? result[k] : json(), v, here);
    } else {
      result[k] = v;
    }
  }
  return result;
}

// Removes from `live` what `previous` had and `applied` no longer has.
void dropUnapplied(json& live, const json& previous, const json& applied, const std::string& path) {
  if (!live.is_object() || !previous.is_object()) {
    return;
  }
  for (const auto& [k, v] : previous.items()) {
    const std::string here = child(path, k);
    if (!applied.is_object() || !applied.contains(k)) {
      live.erase(k);
    } else if (v.is_object() && applied[k].is_object() && live.contains(k)) {
      dropUnapplied(live[k], v, applied[k], here);
    } else if (v.is_array() && mergeKeys().count(here) && live.contains(k) && live[k].is_array()) {
      const std::string& key = mergeKeys().at(here);
      for (const json& e : v) {
        const bool still =
            applied[k].is_array() &&
            std::any_of(applied[k].begin(), applied[k].end(), [&](const json& a) {
              return a.is_object() && e.is_object() && a.value(key, json()) == e.value(key, json());
            });
        if (!still && e.is_object()) {
          json& list = live[k];
          list.erase(std::remove_if(list.begin(), list.end(),
                                    [&](const json& l) {
                                      return l.is_object() &&
                                             l.value(key, json()) == e.value(key, json());
                                    }),
                     list.end());
        }
      }
    }
  }
}

json yamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) {
        out[kv.first.as<std::string>()] = yamlToJson(kv.second);
      }
      return out;
    }
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& e : node) {
        out.push_back(yamlToJson(e));
      }
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string s = node.Scalar();
      if (node.Tag() == "!") {  // quoted: always a string
        return s;
      }
      if (s == "true" || s == "false") {
        return s == "true";
      }
      if (s == "null" || s == "~") {
        return nullptr;
      }
      json number = json::parse(s, nullptr, false);
      return number.is_number() ? number : json(s);
    }
    default:
      return nullptr;
  }
}

}  // namespace

PatchType patchTypeOf(const std::string& content_type) {
  const std::string base = content_type.substr(0, content_type.find(';'));
  if (base == "application/json-patch+json") {
    return PatchType::kJson;
  }
  if (base == "application/merge-patch+json") {
    return PatchType::kMerge;
  }
  if (base == "application/strategic-merge-patch+json") {
    return PatchType::kStrategic;
  }
  if (base == "application/apply-patch+yaml" || base == "application/apply-patch+cbor") {
    return PatchType::kApply;
  }
  return PatchType::kUnsupported;
}

absl::StatusOr<json> applyPatch(const json& live, PatchType type, const std::string& body) {
  const json patch = json::parse(body, nullptr, false);
  if (patch.is_discarded()) {
    return absl::InvalidArgumentError("the patch body is not valid JSON");
  }
  switch (type) {
    case PatchType::kJson:
      if (!patch.is_array()) {
        return absl::InvalidArgumentError(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch");
      }
      try {
        return live.patch(patch);
      } catch (const json::exception& e) {
        return absl::FailedPreconditionError(e.what());
      }
    case PatchType::kMerge: {
      if (!patch.is_object()) {
        return absl::InvalidArgumentError("a merge patch must be a JSON object");
      }
      json result = live;
      result.merge_patch(patch);
      return result;
    }
    case PatchType::kStrategic:
      if (!patch.is_object()) {
        return absl::InvalidArgumentError("a strategic merge patch must be a JSON object");
      }
      return strategicMerge(live, patch);
    default:
      return absl::InvalidArgumentError("unsupported patch type");
  }
}

json strategicMerge(const json& original, const json& patch) {
  return mergeAt(original, patch, "");
}

json serverSideApply(const json& live, const json& previous, const json& applied) {
  json result = live;
  dropUnapplied(result, previous, applied, "");
  return mergeAt(result, applied, "");
}

absl::StatusOr<json> parseJsonOrYaml(const std::string& body) {
  json parsed = json::parse(body, nullptr, false);
  if (!parsed.is_discarded()) {
    return parsed;
  }
  try {
    return yamlToJson(YAML::Load(body));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("error decoding YAML: ", e.what()));
  }
}

}  // namespace ferry::fakes
