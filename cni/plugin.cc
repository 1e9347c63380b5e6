// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "cni/plugin.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "enroll/client.h"
#include "enroll/protocol.h"

namespace ferry::cni {
namespace {

using nlohmann::json;

const std::vector<std::string> kSupportedVersions = {"0.3.0", "0.3.1", "0.4.0", "1.0.0"};

Outcome fail(const std::string& version, int code, const std::string& msg,
             const std::string& details = "") {
  json e = {{"cniVersion", version.empty() ? kSpecVersion : version}, {"code", code}, {"msg", msg}};
  if (!details.empty()) {
    e["details"] = details;
  }
  return Outcome{1, e.dump(),
                 absl::StrCat("ferry-cni: ", msg, details.empty() ? "" : ": ", details, "\n")};
}

std::string envOr(const Invocation& inv, const std::string& name, const std::string& dflt = "") {
  auto it = inv.env.find(name);
  return it == inv.env.end() ? dflt : it->second;
}

// CNI_ARGS: "K1=V1;K2=V2".
std::map<std::string, std::string> parseArgs(const std::string& args) {
  std::map<std::string, std::string> out;
  for (absl::string_view kv : absl::StrSplit(args, ';', absl::SkipEmpty())) {
    std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    out[p.first] = p.second;
  }
  return out;
}

struct Context {
  std::string command;
  std::string version;
  json config;
  std::map<std::string, std::string> args;
  std::string socket = enroll::kDefaultSocketPath;
  std::chrono::milliseconds timeout{5000};
  std::string uid;
};

std::vector<std::string> prevResultIps(const json& prev) {
  std::vector<std::string> ips;
  if (!prev.is_object() || !prev.contains("ips") || !prev["ips"].is_array()) {
    return ips;
  }
  for (const json& ip : prev["ips"]) {
    if (ip.is_object() && ip.contains("address") && ip["address"].is_string()) {
      std::string cidr = ip["address"].get<std::string>();
      ips.push_back(cidr.substr(0, cidr.find('/')));
    }
  }
  return ips;
}

Outcome doAdd(const Invocation& inv, const Context& ctx) {
  if (!ctx.config.contains("prevResult") || !ctx.config["prevResult"].is_object()) {
    return fail(ctx.version, kInvalidConfig, "ferry-cni is a chained plugin and needs prevResult",
                "list it after the plugin that creates the interface and assigns IPs");
  }
  const json& prev = ctx.config["prevResult"];
  enroll::PodInfo pod;
  pod.uid = ctx.uid;
  pod.name = ctx.args.count("K8S_POD_NAME") ? ctx.args.at("K8S_POD_NAME") : "";
  pod.ns = ctx.args.count("K8S_POD_NAMESPACE") ? ctx.args.at("K8S_POD_NAMESPACE") : "";
  pod.netns = envOr(inv, "CNI_NETNS");
  pod.ips = prevResultIps(prev);
  if (pod.name.empty() || pod.ns.empty()) {
    return fail(ctx.version, kInvalidEnvironment,
                "CNI_ARGS must carry K8S_POD_NAME and K8S_POD_NAMESPACE",
                absl::StrCat("CNI_ARGS='", envOr(inv, "CNI_ARGS"), "'"));
  }
  if (pod.netns.empty()) {
    return fail(ctx.version, kInvalidEnvironment, "CNI_NETNS is required for ADD");
  }
  if (absl::Status s = enroll::validatePod(pod); !s.ok()) {
    return fail(ctx.version, kInvalidConfig, "cannot describe the pod to the agent",
                std::string(s.message()));
  }
  enroll::Request req;
  req.op = enroll::Op::kAdd;
  req.pod = pod;
  auto reply = enroll::call(ctx.socket, req, ctx.timeout);
  if (!reply.ok()) {
    // Fail closed: a pod the agent does not know would run without identity or policy.
    return fail(
        ctx.version, kTryAgainLater,
        absl::StrCat("cannot reach the ferry agent at ", ctx.socket, "; refusing to start pod ",
                     pod.ns, "/", pod.name, " outside the mesh"),
        std::string(reply.status().message()));
  }
  if (!reply->ok) {
    return fail(ctx.version, kIoFailure,
                absl::StrCat("the ferry agent refused pod ", pod.ns, "/", pod.name), reply->error);
  }
  // Chained plugin: the previous result goes on unchanged.
  return Outcome{0, prev.dump(), ""};
}

Outcome doDel(const Context& ctx) {
  enroll::Request req;
  req.op = enroll::Op::kDel;
  req.uid = ctx.uid;
  auto reply = enroll::call(ctx.socket, req, ctx.timeout);
  // DEL must succeed when the pod is already gone or was never added (spec: idempotent), and
  // must not wedge pod teardown when the agent is down: the agent drops pods whose network
  // namespace vanished when it replays its journal.
  if (!reply.ok()) {
    return Outcome{0, "",
                   absl::StrCat("ferry-cni: DEL ", ctx.uid, ": agent unreachable (",
                                reply.status().message(), "); agent will drop it on replay\n")};
  }
  if (!reply->ok) {
    return Outcome{0, "", absl::StrCat("ferry-cni: DEL ", ctx.uid, ": ", reply->error, "\n")};
  }
  return Outcome{0, "", ""};
}

Outcome doCheck(const Context& ctx) {
  if (!ctx.config.contains("prevResult")) {
    return fail(ctx.version, kInvalidConfig, "CHECK needs prevResult");
  }
  enroll::Request req;
  req.op = enroll::Op::kCheck;
  req.uid = ctx.uid;
  auto reply = enroll::call(ctx.socket, req, ctx.timeout);
  if (!reply.ok()) {
    return fail(ctx.version, kTryAgainLater,
                absl::StrCat("cannot reach the ferry agent at ", ctx.socket),
                std::string(reply.status().message()));
  }
  if (!reply->ok) {
    return fail(ctx.version, kUnknownContainer,
                absl::StrCat("the ferry agent does not have pod ", ctx.uid), reply->error);
  }
  return Outcome{0, "", ""};
}

}  // namespace

Outcome run(const Invocation& inv) {
  Context ctx;
  ctx.command = envOr(inv, "CNI_COMMAND");
  if (ctx.command.empty()) {
    return fail("", kInvalidEnvironment, "CNI_COMMAND is not set");
  }
  json versionInfo = {{"cniVersion", kSpecVersion}, {"supportedVersions", kSupportedVersions}};
  if (ctx.command == "VERSION") {
    return Outcome{0, versionInfo.dump(), ""};
  }
  ctx.config = json::parse(inv.stdin_config, nullptr, /*allow_exceptions=*/false);
  if (ctx.config.is_discarded() || !ctx.config.is_object()) {
    return fail("", kDecodeFailure, "network configuration on stdin is not a JSON object");
  }
  ctx.version = ctx.config.value("cniVersion", "");
  if (std::find(kSupportedVersions.begin(), kSupportedVersions.end(), ctx.version) ==
      kSupportedVersions.end()) {
    return fail("", kIncompatibleVersion,
                absl::StrCat("unsupported cniVersion '", ctx.version, "'"),
                "supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0");
  }
  if (ctx.config.contains("socket")) {
    if (!ctx.config["socket"].is_string()) {
      return fail(ctx.version, kInvalidConfig, "socket must be a string");
    }
    ctx.socket = ctx.config["socket"].get<std::string>();
  }
  if (ctx.config.contains("timeout_ms")) {
    if (!ctx.config["timeout_ms"].is_number_unsigned() ||
        ctx.config["timeout_ms"].get<uint64_t>() == 0) {
      return fail(ctx.version, kInvalidConfig, "timeout_ms must be a positive integer");
    }
    ctx.timeout = std::chrono::milliseconds(ctx.config["timeout_ms"].get<uint64_t>());
  }
  const std::string container = envOr(inv, "CNI_CONTAINERID");
  if (container.empty()) {
    return fail(ctx.version, kInvalidEnvironment, "CNI_CONTAINERID is not set");
  }
  if (envOr(inv, "CNI_IFNAME").empty()) {
    return fail(ctx.version, kInvalidEnvironment, "CNI_IFNAME is not set");
  }
  ctx.args = parseArgs(envOr(inv, "CNI_ARGS"));
  // The pod UID keys the agent's state. Runtimes that do not pass it get the container ID,
  // which is the same on ADD and DEL.
  ctx.uid = ctx.args.count("K8S_POD_UID") && !ctx.args.at("K8S_POD_UID").empty()
                ? ctx.args.at("K8S_POD_UID")
                : container;
  if (ctx.command == "ADD") {
    return doAdd(inv, ctx);
  }
  if (ctx.command == "DEL") {
    return doDel(ctx);
  }
  if (ctx.command == "CHECK") {
    return doCheck(ctx);
  }
  return fail(ctx.version, kInvalidEnvironment,
              absl::StrCat("unknown CNI_COMMAND '", ctx.command, "'"),
              "ferry-cni supports ADD, DEL, CHECK and VERSION");
}

}  // namespace ferry::cni
