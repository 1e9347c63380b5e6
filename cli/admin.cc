// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "cli/admin.h"

#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/table.h"
#include "distribution/model_json.h"
#include "net/socket_address.h"

namespace ferry::cli {

using nlohmann::json;

absl::StatusOr<std::string> httpGetBody(const std::string& address, const std::string& path,
                                        absl::string_view what, absl::string_view unreachable) {
  size_t colon = address.rfind(':');
  uint32_t port = 0;
  std::optional<net::IpAddress> ip;
  if (colon != std::string::npos) {
    ip = net::IpAddress::parse(address.substr(0, colon));
  }
  if (!ip || !ip->v4 || !absl::SimpleAtoi(address.substr(colon + 1), &port) || port == 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be IPv4:PORT, not '", address, "'"));
  }
  net::SocketAddress a = net::SocketAddress::from(*ip, static_cast<uint16_t>(port));
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (::connect(fd, a.sa(), a.len) != 0) {
    ::close(fd);
    return absl::UnavailableError(unreachable);
  }
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: " + address + "\r\n\r\n";
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[8192];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  size_t body = out.find("\r\n\r\n");
  // HTTP/1.0 or 1.1 (Prometheus answers 1.1 to a 1.0 request).
  if (!out.starts_with("HTTP/1.") || out.substr(8, 5) != " 200 " || body == std::string::npos) {
    return absl::UnavailableError(absl::StrCat(what, " ", address, " answered ", path, " with '",
                                               out.substr(0, out.find('\r')), "'"));
  }
  return out.substr(body + 4);
}

absl::StatusOr<json> adminGet(const std::string& address, const std::string& path) {
  auto body = httpGetBody(
      address, path, "--admin",
      "no agent admin API at " + address + " (is ferry-agent running? --admin sets the address)");
  if (!body.ok()) {
    return body.status();
  }
  json j = json::parse(*body, nullptr, false);
  if (j.is_discarded()) {
    return absl::DataLossError("agent at " + address + ": " + path + " is not JSON");
  }
  return j;
}

absl::StatusOr<Inventory> inventoryFromConfigDump(const json& dump) {
  Inventory inv;
  try {
    inv.workloads = dump.at("workloads").get<std::vector<model::Workload>>();
    inv.services = dump.at("services").get<std::vector<model::Service>>();
    inv.policies = dump.at("policies").get<std::vector<model::AuthorizationPolicy>>();
    inv.rate_limits =
        dump.value("rate_limits", json::array()).get<std::vector<model::RateLimitPolicy>>();
    inv.request_authentications = dump.value("request_authentications", json::array())
                                      .get<std::vector<model::RequestAuthentication>>();
    // Controller mode: pods on other nodes are in the pod index only (a full entry wins).
    for (model::Workload& w :
         dump.value("pod_index", json::array()).get<std::vector<model::Workload>>()) {
      if (inv.findPod(w.key) == nullptr) {
        inv.workloads.push_back(std::move(w));
      }
    }
  } catch (const json::exception& e) {
    return absl::DataLossError(std::string("config_dump: ") + e.what());
  }
  return inv;
}

json statusJson(const json& dump, const json& stats) {
  json certs = json::array();
  for (const auto& c : dump.value("certificates", json::array())) {
    certs.push_back(
        c.value("spiffe_id", c.value("namespace", "") + "/" + c.value("service_account", "")));
  }
  json counters;
  for (const char* name : {"connections_active", "outbound_hbone", "outbound_same_node",
                           "outbound_passthrough", "inbound_hbone_streams",
                           "inbound_plain_accepted", "policy_denied", "tls_handshake_failures"}) {
    counters[name] = stats.value(name, 0);
  }
  return {{"node", dump.value("node", "")},
          {"ready", dump.value("ready", false)},
          {"waiting", dump.value("waiting", json::array())},
          {"config_version", dump["config"].value("version", 0)},
          {"config_applied_at", dump["config"].value("applied_at", json(nullptr))},
          {"pods", dump.value("pods", json::array()).size()},
          {"workloads", dump.value("workloads", json::array()).size()},
          {"services", dump.value("services", json::array()).size()},
          {"policies", dump.value("policies", json::array()).size()},
          {"certificates", certs},
          {"counters", counters}};
}

std::string statusTable(const json& s) {
  auto text = [](const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
  std::vector<std::vector<std::string>> rows = {
      {"node", text(s["node"])},
      {"ready", s["ready"].get<bool>() ? "yes" : "no"},
  };
  for (const auto& w : s["waiting"]) {
    rows.push_back({"waiting for", text(w)});
  }
  rows.push_back({"config version", text(s["config_version"])});
  rows.push_back({"config applied",
                  s["config_applied_at"].is_null() ? "never" : text(s["config_applied_at"])});
  for (const char* k : {"pods", "workloads", "services", "policies"}) {
    rows.push_back({k, text(s[k])});
  }
  for (const auto& c : s["certificates"]) {
    rows.push_back({"certificate", text(c)});
  }
  for (const auto& [k, v] : s["counters"].items()) {
    rows.push_back({k, text(v)});
  }
  return renderTable({"FIELD", "VALUE"}, rows);
}

json certsJson(const json& dump) {
  return dump.value("certificates", json::array());
}

std::string certsTable(const json& certs) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : certs) {
    std::vector<std::string> pods;
    for (const auto& p : c.value("pods", json::array())) {
      pods.push_back(p.get<std::string>());
    }
    std::string expires = c.contains("expires_in_seconds")
                              ? absl::StrCat(c["expires_in_seconds"].get<int64_t>() / 3600, "h")
                              : "";
    rows.push_back({c.value("spiffe_id", ""), c.value("not_after", ""), expires,
                    absl::StrJoin(pods, ","), c.value("error", "")});
  }
  return renderTable({"IDENTITY", "NOT AFTER", "EXPIRES IN", "PODS", "ERROR"}, rows);
}

}  // namespace ferry::cli
