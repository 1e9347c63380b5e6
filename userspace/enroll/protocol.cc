// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "enroll/protocol.h"

#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "enroll/pod_json.h"
#include "net/ip.h"

namespace ferry::enroll {
namespace {

using nlohmann::json;

absl::Status checkKeys(const json& object, const std::set<std::string>& allowed,
                       const std::string& where) {
  for (const auto& [key, value] : object.items()) {
    if (allowed.count(key) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": unknown field \"", key, "\""));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> stringField(const json& object, const char* key,
                                        const std::string& where) {
  auto it = object.find(key);
  if (it == object.end()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": missing field \"", key, "\""));
  }
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": field \"", key, "\" must be a string, got ", it->type_name()));
  }
  return it->get<std::string>();
}

absl::StatusOr<json> parseObject(std::string_view line, const std::string& what) {
  if (line.size() > kMaxLineBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is ", line.size(), " bytes, over the limit of ", kMaxLineBytes));
  }
  json parsed = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid JSON"));
  }
  if (!parsed.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be a JSON object, got ", parsed.type_name()));
  }
  return parsed;
}

// "fd00:244:0::1" and "fd00:244::1" are one address; the agent compares IPs as strings.
std::string canonicalIp(const std::string& text) {
  std::optional<net::IpAddress> parsed = net::IpAddress::parse(text);
  return parsed ? parsed->str() : text;  // validatePod names the bad entry
}

}  // namespace

std::string_view opName(Op op) {
  switch (op) {
    case Op::kAdd:
      return "add";
    case Op::kDel:
      return "del";
    case Op::kCheck:
      return "check";
  }
  return "?";
}

absl::Status validatePod(const PodInfo& pod) {
  if (pod.uid.empty()) {
    return absl::InvalidArgumentError("pod: \"uid\" must not be empty");
  }
  if (pod.name.empty()) {
    return absl::InvalidArgumentError("pod: \"name\" must not be empty");
  }
  if (pod.ns.empty()) {
    return absl::InvalidArgumentError("pod: \"namespace\" must not be empty");
  }
  if (pod.netns.empty() || pod.netns.front() != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("pod: \"netns\" must be an absolute path, got \"", pod.netns, "\""));
  }
  for (const std::string& ip : pod.ips) {
    if (!net::IpAddress::parse(ip)) {
      return absl::InvalidArgumentError(
          absl::StrCat("pod: \"ips\" entry \"", ip, "\" is not an IPv4 or IPv6 address"));
    }
  }
  return absl::OkStatus();
}

nlohmann::json podToJson(const PodInfo& pod) {
  return json{{"uid", pod.uid},      {"name", pod.name},
              {"namespace", pod.ns}, {"service_account", pod.service_account},
              {"netns", pod.netns},  {"ips", pod.ips}};
}

absl::StatusOr<PodInfo> podFromJson(const nlohmann::json& object) {
  if (!object.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pod: must be a JSON object, got ", object.type_name()));
  }
  if (auto s =
          checkKeys(object, {"uid", "name", "namespace", "service_account", "netns", "ips"}, "pod");
      !s.ok()) {
    return s;
  }
  PodInfo pod;
  auto uid = stringField(object, "uid", "pod");
  auto name = stringField(object, "name", "pod");
  auto ns = stringField(object, "namespace", "pod");
  auto netns = stringField(object, "netns", "pod");
  for (const auto* field : {&uid, &name, &ns, &netns}) {
    if (!field->ok()) {
      return field->status();
    }
  }
  pod.uid = *uid;
  pod.name = *name;
  pod.ns = *ns;
  pod.netns = *netns;
  if (object.contains("service_account")) {
    auto sa = stringField(object, "service_account", "pod");
    if (!sa.ok()) {
      return sa.status();
    }
    pod.service_account = *sa;
  }
  if (object.contains("ips")) {
    const json& ips = object["ips"];
    if (!ips.is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat("pod: field \"ips\" must be an array, got ", ips.type_name()));
    }
    for (const json& ip : ips) {
      if (!ip.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("pod: \"ips\" entries must be strings, got ", ip.type_name()));
      }
      pod.ips.push_back(canonicalIp(ip.get<std::string>()));
    }
  }
  if (auto s = validatePod(pod); !s.ok()) {
    return s;
  }
  return pod;
}

std::string encodeRequest(const Request& request) {
  json out{{"op", std::string(opName(request.op))}};
  if (request.op == Op::kAdd) {
    out["pod"] = podToJson(request.pod);
  } else {
    out["uid"] = request.uid;
  }
  return out.dump();
}

std::string encodeReply(const Reply& reply) {
  json out{{"ok", reply.ok}};
  if (!reply.ok) {
    out["error"] = reply.error;
  }
  return out.dump();
}

absl::StatusOr<Request> decodeRequest(std::string_view line) {
  auto parsed = parseObject(line, "request");
  if (!parsed.ok()) {
    return parsed.status();
  }
  const json& object = *parsed;
  auto op = stringField(object, "op", "request");
  if (!op.ok()) {
    return op.status();
  }
  Request request;
  if (*op == "add") {
    if (auto s = checkKeys(object, {"op", "pod"}, "add request"); !s.ok()) {
      return s;
    }
    if (!object.contains("pod")) {
      return absl::InvalidArgumentError("add request: missing field \"pod\"");
    }
    auto pod = podFromJson(object["pod"]);
    if (!pod.ok()) {
      return pod.status();
    }
    request.op = Op::kAdd;
    request.pod = *std::move(pod);
    request.uid = request.pod.uid;
    return request;
  }
  if (*op == "del" || *op == "check") {
    std::string where = absl::StrCat(*op, " request");
    if (auto s = checkKeys(object, {"op", "uid"}, where); !s.ok()) {
      return s;
    }
    auto uid = stringField(object, "uid", where);
    if (!uid.ok()) {
      return uid.status();
    }
    if (uid->empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": \"uid\" must not be empty"));
    }
    request.op = *op == "del" ? Op::kDel : Op::kCheck;
    request.uid = *uid;
    return request;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("request: unknown op \"", *op, "\" (want add, del or check)"));
}

absl::StatusOr<Reply> decodeReply(std::string_view line) {
  auto parsed = parseObject(line, "reply");
  if (!parsed.ok()) {
    return parsed.status();
  }
  const json& object = *parsed;
  if (auto s = checkKeys(object, {"ok", "error"}, "reply"); !s.ok()) {
    return s;
  }
  auto it = object.find("ok");
  if (it == object.end() || !it->is_boolean()) {
    return absl::InvalidArgumentError("reply: field \"ok\" must be present and a boolean");
  }
  Reply reply;
  reply.ok = it->get<bool>();
  if (!reply.ok) {
    auto error = stringField(object, "error", "reply");
    if (!error.ok()) {
      return error.status();
    }
    reply.error = *error;
  }
  return reply;
}

}  // namespace ferry::enroll
