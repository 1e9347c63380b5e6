// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "kube/config.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace ferry::kube {
namespace {

// IPv6 literals need brackets inside a URL.
std::string hostPort(const std::string& host, const std::string& port) {
  if (host.find(':') != std::string::npos && host.front() != '[') {
    return absl::StrCat("[", host, "]:", port);
  }
  return absl::StrCat(host, ":", port);
}

std::string resolve(const std::filesystem::path& base, const std::string& file) {
  std::filesystem::path p(file);
  return p.is_absolute() ? file : (base / p).string();
}

// kubeconfig *-data fields are base64 PEM.
absl::StatusOr<std::string> decodeData(const YAML::Node& node, const std::string& field) {
  std::string out;
  if (!absl::Base64Unescape(node.as<std::string>(), &out)) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is not valid base64"));
  }
  return out;
}

// Either `<field>-data` (inline, base64) or `<field>` (a file path).
absl::StatusOr<std::string> dataOrFile(const YAML::Node& node, const std::string& field,
                                       const std::filesystem::path& base) {
  if (node[field + "-data"]) {
    return decodeData(node[field + "-data"], field + "-data");
  }
  if (node[field]) {
    return readFile(resolve(base, node[field].as<std::string>()));
  }
  return std::string();
}

// A default YAML::Node counts as present (null), so absence is an empty optional.
std::optional<YAML::Node> findNamed(const YAML::Node& list, const std::string& name,
                                    const char* inner) {
  if (!list || !list.IsSequence()) {
    return std::nullopt;
  }
  for (const auto& entry : list) {
    if (entry["name"] && entry["name"].as<std::string>() == name && entry[inner] &&
        entry[inner].IsMap()) {
      return entry[inner];
    }
  }
  return std::nullopt;
}

absl::StatusOr<KubeConfig> parseKubeconfig(const YAML::Node& root, const std::string& path,
                                           const std::string& wanted_context) {
  const std::filesystem::path base = std::filesystem::path(path).parent_path();
  std::string context_name = wanted_context;
  if (context_name.empty()) {
    if (!root["current-context"] || root["current-context"].as<std::string>().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": no current-context and no context was asked for"));
    }
    context_name = root["current-context"].as<std::string>();
  }
  std::optional<YAML::Node> found_context = findNamed(root["contexts"], context_name, "context");
  if (!found_context) {
    return absl::NotFoundError(absl::StrCat(path, ": context \"", context_name, "\" not found"));
  }
  const YAML::Node& context = *found_context;
  if (!context["cluster"]) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": context \"", context_name, "\" names no cluster"));
  }
  const std::string cluster_name = context["cluster"].as<std::string>();
  std::optional<YAML::Node> found_cluster = findNamed(root["clusters"], cluster_name, "cluster");
  if (!found_cluster || !(*found_cluster)["server"]) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cluster \"", cluster_name, "\" not found or has no server"));
  }
  const YAML::Node& cluster = *found_cluster;
  KubeConfig cfg;
  cfg.server = cluster["server"].as<std::string>();
  while (!cfg.server.empty() && cfg.server.back() == '/') {
    cfg.server.pop_back();
  }
  if (cluster["insecure-skip-tls-verify"]) {
    cfg.insecure_skip_tls_verify = cluster["insecure-skip-tls-verify"].as<bool>();
  }
  auto ca = dataOrFile(cluster, "certificate-authority", base);
  if (!ca.ok()) {
    return ca.status();
  }
  cfg.ca_pem = *ca;
  if (context["namespace"]) {
    cfg.ns = context["namespace"].as<std::string>();
  }
  if (context["user"]) {
    const std::string user_name = context["user"].as<std::string>();
    std::optional<YAML::Node> found_user = findNamed(root["users"], user_name, "user");
    if (!found_user) {
      return absl::NotFoundError(absl::StrCat(path, ": user \"", user_name, "\" not found"));
    }
    const YAML::Node& user = *found_user;
    if (user["exec"] || user["auth-provider"]) {
      return absl::UnimplementedError(absl::StrCat(
          path, ": user \"", user_name,
          "\" uses an exec/auth-provider credential plugin, which ferry does not run; use a "
          "token or a client certificate"));
    }
    if (user["token"]) {
      cfg.token = user["token"].as<std::string>();
    }
    if (user["tokenFile"]) {
      cfg.token_file = resolve(base, user["tokenFile"].as<std::string>());
    }
    auto cert = dataOrFile(user, "client-certificate", base);
    if (!cert.ok()) {
      return cert.status();
    }
    auto key = dataOrFile(user, "client-key", base);
    if (!key.ok()) {
      return key.status();
    }
    cfg.client_cert_pem = *cert;
    cfg.client_key_pem = *key;
    if (cfg.client_cert_pem.empty() != cfg.client_key_pem.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": user \"", user_name, "\" has a client certificate without a key or vice versa"));
    }
  }
  return cfg;
}

}  // namespace

absl::StatusOr<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    const std::string msg = absl::StrCat("cannot read ", path, ": ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::PermissionDeniedError(msg);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<KubeConfig> loadInCluster(const std::map<std::string, std::string>& env,
                                         const std::string& sa_dir) {
  auto host = env.find("KUBERNETES_SERVICE_HOST");
  auto port = env.find("KUBERNETES_SERVICE_PORT");
  if (host == env.end() || host->second.empty() || port == env.end() || port->second.empty()) {
    return absl::FailedPreconditionError(
        "not running in a Kubernetes pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
        "must be set (or pass --kubeconfig)");
  }
  KubeConfig cfg;
  cfg.server = absl::StrCat("https://", hostPort(host->second, port->second));
  cfg.token_file = sa_dir + "/token";
  auto token = readFile(cfg.token_file);
  if (!token.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "in-cluster config: service-account token missing: ", token.status().message()));
  }
  cfg.token = std::string(absl::StripAsciiWhitespace(*token));
  auto ca = readFile(sa_dir + "/ca.crt");
  if (!ca.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("in-cluster config: cluster CA missing: ", ca.status().message()));
  }
  cfg.ca_pem = *ca;
  if (auto ns = readFile(sa_dir + "/namespace"); ns.ok()) {
    cfg.ns = std::string(absl::StripAsciiWhitespace(*ns));
  }
  return cfg;
}

absl::StatusOr<KubeConfig> loadInClusterFromEnvironment(const std::string& sa_dir) {
  std::map<std::string, std::string> env;
  for (const char* name : {"KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"}) {
    if (const char* v = std::getenv(name)) {
      env[name] = v;
    }
  }
  return loadInCluster(env, sa_dir);
}

absl::StatusOr<KubeConfig> loadKubeconfig(const std::string& path, const std::string& context) {
  auto text = readFile(path);
  if (!text.ok()) {
    return text.status();
  }
  try {
    return parseKubeconfig(YAML::Load(*text), path, context);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a valid kubeconfig: ", e.what()));
  }
}

}  // namespace ferry::kube
