// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "kube/config.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"

namespace ferry::kube {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/ferry-kube-config-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    fs::create_directories((path / name).parent_path());
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
};

TEST_CASE("in-cluster config reads the service-account token, CA and namespace") {
  TempDir dir;
  dir.write("sa/token", "tok-123\n");
  dir.write("sa/ca.crt", "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n");
  dir.write("sa/namespace", "ferry-system\n");
  std::map<std::string, std::string> env = {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
                                            {"KUBERNETES_SERVICE_PORT", "443"}};
  auto cfg = loadInCluster(env, (dir.path / "sa").string());
  REQUIRE(cfg.ok());
  CHECK(cfg->server == "https://10.96.0.1:443");
  CHECK(cfg->token == "tok-123");
  CHECK(cfg->token_file == (dir.path / "sa/token").string());
  CHECK(cfg->ca_pem.find("BEGIN CERTIFICATE") != std::string::npos);
  CHECK(cfg->ns == "ferry-system");

  env["KUBERNETES_SERVICE_HOST"] = "fd00:96::1";
  cfg = loadInCluster(env, (dir.path / "sa").string());
  REQUIRE(cfg.ok());
  CHECK(cfg->server == "https://[fd00:96::1]:443");
}

TEST_CASE("in-cluster config says what is missing") {
  TempDir dir;
  auto no_env = loadInCluster({}, dir.path.string());
  REQUIRE_FALSE(no_env.ok());
  CHECK(std::string(no_env.status().message()).find("KUBERNETES_SERVICE_HOST") !=
        std::string::npos);
  auto no_token =
      loadInCluster({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}},
                    dir.path.string());
  REQUIRE_FALSE(no_token.ok());
  CHECK(std::string(no_token.status().message()).find("token") != std::string::npos);
}

TEST_CASE("kubeconfig: current context, inline base64 data and relative file references") {
  TempDir dir;
  dir.write("certs/ca.pem", "CA-PEM");
  dir.write("token", "file-token\n");
  const std::string path = dir.write("kubeconfig", R"(
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: prod
  cluster: {server: "https://prod:6443"}
- name: dev
  cluster:
    server: "https://127.0.0.1:6443/"
    certificate-authority: certs/ca.pem
contexts:
- name: dev
  context: {cluster: dev, user: alice, namespace: team-a}
- name: prod
  context: {cluster: prod, user: bob}
users:
- name: alice
  user:
    client-certificate-data: )" + absl::Base64Escape("CERT-PEM") +
                                                       R"(
    client-key-data: )" + absl::Base64Escape("KEY-PEM") +
                                                       R"(
- name: bob
  user: {tokenFile: token, token: inline-token}
)");
  auto dev = loadKubeconfig(path);
  REQUIRE(dev.ok());
  CHECK(dev->server == "https://127.0.0.1:6443");
  CHECK(dev->ca_pem == "CA-PEM");
  CHECK(dev->client_cert_pem == "CERT-PEM");
  CHECK(dev->client_key_pem == "KEY-PEM");
  CHECK(dev->ns == "team-a");

  auto prod = loadKubeconfig(path, "prod");
  REQUIRE(prod.ok());
  CHECK(prod->server == "https://prod:6443");
  CHECK(prod->token == "inline-token");
  CHECK(prod->token_file == (dir.path / "token").string());
  CHECK(prod->ns == "default");
}

TEST_CASE("kubeconfig errors name the problem") {
  TempDir dir;
  struct Row {
    const char* description;
    std::string yaml;
    const char* context;
    const char* expected;
  };
  const std::vector<Row> rows = {
      {"unknown context", "current-context: x\ncontexts: []\n", "", "context \"x\" not found"},
      {"no current context", "clusters: []\n", "", "no current-context"},
      {"exec plugin",
       "current-context: c\nclusters: [{name: k, cluster: {server: https://a}}]\n"
       "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
       "users: [{name: u, user: {exec: {command: aws}}}]\n",
       "", "exec/auth-provider"},
      {"cert without key",
       "current-context: c\nclusters: [{name: k, cluster: {server: https://a}}]\n"
       "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
       "users: [{name: u, user: {client-certificate-data: QQ==}}]\n",
       "", "without a key"},
      {"missing CA file",
       "current-context: c\nclusters: [{name: k, cluster: {server: https://a, "
       "certificate-authority: nope.pem}}]\ncontexts: [{name: c, context: {cluster: k}}]\n",
       "", "nope.pem"},
      {"not yaml", "current-context: [unclosed\n", "", "not a valid kubeconfig"},
  };
  for (const auto& row : rows) {
    INFO(row.description);
    const std::string path = dir.write("kc", row.yaml);
    auto cfg = loadKubeconfig(path, row.context);
    REQUIRE_FALSE(cfg.ok());
    CHECK(std::string(cfg.status().message()).find(row.expected) != std::string::npos);
  }
  CHECK(loadKubeconfig((dir.path / "absent").string()).status().code() ==
        absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ferry::kube
