// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "fakes/kube_api_server/table.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ferry::fakes {
namespace {

using nlohmann::json;

struct Column {
  std::string name;
  std::string type;
  int priority;
  std::string path;  // CRD jsonPath, or "" for a computed built-in column
};

const json& at(const json& obj, const std::string& dotted) {
  static const json kNull;
  const json* cur = &obj;
  for (absl::string_view part : absl::StrSplit(dotted, '.', absl::SkipEmpty())) {
    if (!cur->is_object() || !cur->contains(std::string(part))) {
      return kNull;
    }
    cur = &(*cur)[std::string(part)];
  }
  return *cur;
}

// kubectl's duration.HumanDuration, as the server formats Age.
std::string age(const json& obj) {
  const json& ts = at(obj, "metadata.creationTimestamp");
  absl::Time created;
  std::string err;
  if (!ts.is_string() ||
      !absl::ParseTime(absl::RFC3339_sec, ts.get<std::string>(), &created, &err)) {
    return "<unknown>";
  }
  const int64_t s = std::max<int64_t>(0, absl::ToInt64Seconds(absl::Now() - created));
  if (s < 120) {
    return absl::StrCat(s, "s");
  }
  const int64_t m = s / 60, h = s / 3600, d = s / 86400;
  if (m < 10) {
    return s % 60 == 0 ? absl::StrCat(m, "m") : absl::StrCat(m, "m", s % 60, "s");
  }
  if (h < 3) {
    return absl::StrCat(m, "m");
  }
  if (h < 8) {
    return m % 60 == 0 ? absl::StrCat(h, "h") : absl::StrCat(h, "h", m % 60, "m");
  }
  if (h < 48) {
    return absl::StrCat(h, "h");
  }
  if (h < 24 * 8) {
    return h % 24 == 0 ? absl::StrCat(d, "d") : absl::StrCat(d, "d", h % 24, "h");
  }
  return absl::StrCat(d, "d");
}

std::string text(const json& v, const char* none = "<none>") {
  if (v.is_null()) {
    return none;
  }
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::vector<Column> columnsOf(const kube::Resource& r, const json& crd_version) {
  std::vector<Column> cols = {{"Name", "string", 0, ""}};
  if (crd_version.is_object() && crd_version.contains("additionalPrinterColumns")) {
    for (const json& c : crd_version["additionalPrinterColumns"]) {
      cols.push_back({c.value("name", ""), c.value("type", "string"), c.value("priority", 0),
                      c.value("jsonPath", "")});
    }
    return cols;
  }
  if (r.kind == "Pod") {
    cols.insert(cols.end(), {{"Ready", "string", 0, ""},
                             {"Status", "string", 0, ""},
                             {"Restarts", "string", 0, ""},
                             {"Age", "string", 0, ""},
                             {"IP", "string", 1, ".status.podIP"},
                             {"Node", "string", 1, ".spec.nodeName"}});
  } else if (r.kind == "Service") {
    cols.insert(cols.end(), {{"Type", "string", 0, ".spec.type"},
                             {"Cluster-IP", "string", 0, ".spec.clusterIP"},
                             {"External-IP", "string", 0, ""},
                             {"Port(s)", "string", 0, ""},
                             {"Age", "string", 0, ""}});
  } else if (r.kind == "Namespace") {
    cols.insert(cols.end(), {{"Status", "string", 0, ""}, {"Age", "string", 0, ""}});
  } else if (r.kind == "ConfigMap" || r.kind == "Secret") {
    if (r.kind == "Secret") {
      cols.push_back({"Type", "string", 0, ".type"});
    }
    cols.insert(cols.end(), {{"Data", "integer", 0, ""}, {"Age", "string", 0, ""}});
  } else {
    cols.push_back({"Age", "string", 0, ""});
  }
  return cols;
}

json cell(const kube::Resource& r, const Column& c, const json& obj) {
  if (c.name == "Name") {
    return at(obj, "metadata.name");
  }
  if (!c.path.empty()) {
    const json& v = at(obj, c.path);
    return c.type == "date" ? json(age(obj)) : json(text(v));
  }
  if (c.name == "Age") {
    return age(obj);
  }
  if (c.name == "Ready") {
    const json& specs = at(obj, "spec.containers");
    int ready = 0;
    for (const json& s : at(obj, "status.containerStatuses")) {
      ready += s.value("ready", false) ? 1 : 0;
    }
    return absl::StrCat(ready, "/", specs.is_array() ? specs.size() : 0);
  }
  if (c.name == "Status") {
    const json& phase = at(obj, "status.phase");
    return phase.is_string() ? phase.get<std::string>()
                             : std::string(r.kind == "Namespace" ? "Active" : "Pending");
  }
  if (c.name == "Restarts") {
    int restarts = 0;
    for (const json& s : at(obj, "status.containerStatuses")) {
      restarts += s.value("restartCount", 0);
    }
    return std::to_string(restarts);
  }
  if (c.name == "External-IP") {
    return "<none>";
  }
  if (c.name == "Port(s)") {
    std::vector<std::string> ports;
    for (const json& p : at(obj, "spec.ports")) {
      ports.push_back(absl::StrCat(p.value("port", 0), "/", p.value("protocol", "TCP")));
    }
    return ports.empty() ? "<none>" : absl::StrJoin(ports, ",");
  }
  if (c.name == "Data") {
    const json& data = at(obj, "data");
    const json& binary = at(obj, "binaryData");
    return (data.is_object() ? data.size() : 0) + (binary.is_object() ? binary.size() : 0);
  }
  return nullptr;
}

}  // namespace

bool wantsTable(const std::string& accept) {
  return accept.find("as=Table") != std::string::npos;
}

json asTable(const kube::Resource& r, const std::vector<json>& objects, const json& crd_version,
             bool include_object, const std::string& resource_version) {
  const std::vector<Column> cols = columnsOf(r, crd_version);
  json defs = json::array();
  for (const Column& c : cols) {
    defs.push_back({{"name", c.name},
                    {"type", c.type},
                    {"format", c.name == "Name" ? "name" : ""},
                    {"description", ""},
                    {"priority", c.priority}});
  }
  json rows = json::array();
  for (const json& obj : objects) {
    json cells = json::array();
    for (const Column& c : cols) {
      cells.push_back(cell(r, c, obj));
    }
    json object = include_object ? obj
                                 : json{{"kind", "PartialObjectMetadata"},
                                        {"apiVersion", "meta.k8s.io/v1"},
                                        {"metadata", obj.value("metadata", json::object())}};
    if (include_object) {
      object["kind"] = r.kind;
      object["apiVersion"] = r.apiVersion();
    }
    rows.push_back({{"cells", cells}, {"object", object}});
  }
  return {{"kind", "Table"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", {{"resourceVersion", resource_version}}},
          {"columnDefinitions", defs},
          {"rows", rows}};
}

}  // namespace ferry::fakes
