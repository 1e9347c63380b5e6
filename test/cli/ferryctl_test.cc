// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Runs the real ferryctl binary on policies/ and on temporary manifests.

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

extern char** environ;

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct Run {
  int code = -1;
  std::string out, err;
};

std::string readAll(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "ferryctl-test-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
  }

 private:
  fs::path path_;
};

// Runs ferryctl with `args`, `input` on its stdin.
Run ferryctl(const std::vector<std::string>& args, const std::string& input = "") {
  TempDir io;
  const std::string out = (io.path() / "out").string(), err = (io.path() / "err").string();
  const std::string in = (io.path() / "in").string();
  io.write("in", input);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<std::string> argv_s = {FERRYCTL_PATH};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, FERRYCTL_PATH, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(rc == 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return Run{WEXITSTATUS(status), readAll(out), readAll(err)};
}

TEST_CASE("ferryctl check: an allowed HTTP request names the ALLOW policy and rule", "[cli]") {
  Run r = ferryctl({"check", "demo/n1p1", "demo/n1p2", "GET", "/index.html", "--manifests",
                    POLICIES_DIR, "-o", "json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  json j = json::parse(r.out);
  CHECK(j["allowed"] == true);
  CHECK(j["reason"] == "allow_matched");
  CHECK(j["policy"] == "demo/web-allow-client");
  CHECK(j["rule"] == 0);
  CHECK(j["source"]["principal"] == "spiffe://cluster.local/ns/demo/sa/client");
  CHECK(j["request"]["port"] == 8080);  // web's targetPort
  CHECK(j["request"]["host"] == "web.demo.svc.cluster.local");
  // The DENY policy that did not match says why.
  bool saw_deny_admin = false;
  for (const auto& p : j["policies"]) {
    if (p["name"] == "demo/deny-admin") {
      saw_deny_admin = true;
      CHECK(p["rules"][0]["matched"] == false);
      CHECK_THAT(p["rules"][0]["why"].get<std::string>(), Catch::Contains("/admin*"));
    }
  }
  CHECK(saw_deny_admin);

  Run table = ferryctl(
      {"check", "demo/n1p1", "demo/n1p2", "GET", "/index.html", "--manifests", POLICIES_DIR});
  REQUIRE(table.code == 0);
  CHECK_THAT(table.out,
             Catch::Contains("ALLOW: allowed by ALLOW policy demo/web-allow-client rule 0"));
  CHECK_THAT(table.out, Catch::Contains("POLICY"));
}

TEST_CASE("ferryctl check: a denied HTTP request names the DENY policy", "[cli]") {
  Run r = ferryctl({"check", "demo/n1p1", "demo/n1p2", "GET", "/admin/users", "--manifests",
                    POLICIES_DIR, "-o", "json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  json j = json::parse(r.out);
  CHECK(j["allowed"] == false);
  CHECK(j["reason"] == "deny_matched");
  CHECK(j["policy"] == "demo/deny-admin");
  CHECK(j["rule"] == 0);

  Run table = ferryctl(
      {"check", "demo/n1p1", "demo/n1p2", "GET", "/admin/users", "--manifests", POLICIES_DIR});
  REQUIRE(table.code == 0);
  CHECK_THAT(table.out, Catch::Contains("DENY: denied by DENY policy demo/deny-admin rule 0"));

  // The path is matched as the agent matches it: normalized once (found by
  // e2e_policy_differential_test, where ferryctl allowed what the data path denied).
  for (const char* path :
       {"/a/../admin/users", "//admin/users", "/%61dmin/users", "/admin/./users"}) {
    Run n = ferryctl({"check", "demo/n1p1", "demo/n1p2", "GET", path, "--manifests", POLICIES_DIR,
                      "-o", "json"});
    INFO(path << ": " << n.err);
    REQUIRE(n.code == 0);
    json k = json::parse(n.out);
    CHECK(k["allowed"] == false);
    CHECK(k["policy"] == "demo/deny-admin");
    CHECK(k["request"]["path"] == "/admin/users");
  }
  Run bad =
      ferryctl({"check", "demo/n1p1", "demo/n1p2", "GET", "/a%00", "--manifests", POLICIES_DIR});
  CHECK(bad.code == 1);
  CHECK_THAT(bad.err, Catch::Contains("the agent answers 400"));
}

TEST_CASE("ferryctl check: CONNECT is a tunnel only a rule naming it opens, hosts in normal form",
          "[cli]") {
  // web-allow-client names GET, HEAD and POST for the client: not CONNECT.
  Run r = ferryctl({"check", "demo/n1p1", "demo/n1p2", "CONNECT", "", "--host",
                    "Web.Demo.svc.cluster.local.:8080", "--manifests", POLICIES_DIR, "-o", "json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  json j = json::parse(r.out);
  CHECK(j["allowed"] == false);
  CHECK(j["reason"] == "tunnel_not_named");
  CHECK(j["request"]["host"] == "web.demo.svc.cluster.local:8080");  // as the agent matches it
  // A host the agent answers 400 to is an error here too.
  Run bad = ferryctl({"check", "demo/n1p1", "demo/n1p2", "GET", "/", "--host", "web..",
                      "--manifests", POLICIES_DIR});
  CHECK(bad.code == 1);
  CHECK_THAT(bad.err, Catch::Contains("empty label"));
}

TEST_CASE("ferryctl check: L4 connections to db, from web allowed and from the client denied",
          "[cli]") {
  Run allowed =
      ferryctl({"check", "demo/n1p2", "demo/n2p2", "--manifests", POLICIES_DIR, "-o", "json"});
  INFO(allowed.err);
  REQUIRE(allowed.code == 0);
  json a = json::parse(allowed.out);
  CHECK(a["allowed"] == true);
  CHECK(a["policy"] == "demo/db-allow-web");
  CHECK(a["request"]["protocol"] == "tcp");
  CHECK(a["request"]["port"] == 5432);

  Run denied =
      ferryctl({"check", "demo/n1p1", "demo/n2p2", "--manifests", POLICIES_DIR, "-o", "json"});
  REQUIRE(denied.code == 0);
  json d = json::parse(denied.out);
  CHECK(d["allowed"] == false);
  CHECK(d["reason"] == "no_allow_matched");
  CHECK(d["policy"].is_null());
  bool explained = false;
  for (const auto& p : d["policies"]) {
    if (p["name"] == "demo/db-allow-web") {
      explained = true;
      CHECK_THAT(p["rules"][0]["why"].get<std::string>(), Catch::Contains("sa/client"));
    }
  }
  CHECK(explained);
}

constexpr const char* kTwoPods = R"(apiVersion: v1
kind: Pod
metadata: {name: a, namespace: shop, labels: {app: a}}
spec: {serviceAccountName: sa-a, nodeName: node1, containers: [{name: c, image: x}]}
status: {podIP: 10.244.1.20, podIPs: [{ip: 10.244.1.20}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: shop, labels: {app: b}}
spec: {serviceAccountName: sa-b, nodeName: node1, containers: [{name: c, image: x}]}
status: {podIP: 10.244.1.21, podIPs: [{ip: 10.244.1.21}]}
)";

constexpr const char* kDenyFromA = R"(apiVersion: security.ferry.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: no-a, namespace: shop}
spec:
  selector: {matchLabels: {app: b}}
  action: DENY
  rules:
  - from: [{source: {principals: ["cluster.local/ns/shop/sa/sa-a"]}}]
)";

TEST_CASE("ferryctl check: temporary manifests, with and without the policy", "[cli]") {
  TempDir dir;
  dir.write("pods.yaml", kTwoPods);
  Run open = ferryctl({"check", "shop/a", "shop/b", "--port", "9000", "--manifests",
                       dir.path().string(), "-o", "json"});
  INFO(open.err);
  REQUIRE(open.code == 0);
  json o = json::parse(open.out);
  CHECK(o["allowed"] == true);
  CHECK(o["reason"] == "no_allow_policy");
  CHECK(o["policies"].empty());

  dir.write("policy.yaml", kDenyFromA);
  Run denied =
      ferryctl({"check", "shop/a", "shop/b", "--port", "9000", "--manifests", dir.path().string()});
  REQUIRE(denied.code == 0);
  CHECK_THAT(denied.out, Catch::Contains("DENY: denied by DENY policy shop/no-a rule 0"));

  // Another principal is not denied.
  Run other = ferryctl({"check", "shop/b", "shop/b", "--port", "9000", "--manifests",
                        dir.path().string(), "-o", "json"});
  REQUIRE(other.code == 0);
  CHECK(json::parse(other.out)["allowed"] == true);

  // Without a Service in front, the port must be given.
  Run no_port = ferryctl({"check", "shop/a", "shop/b", "--manifests", dir.path().string()});
  CHECK(no_port.code == 1);
  CHECK_THAT(no_port.err, Catch::Contains("pass --port"));
}

TEST_CASE("ferryctl: a bad manifest is an error naming the file and field", "[cli]") {
  TempDir dir;
  dir.write("pods.yaml", kTwoPods);
  dir.write("bad.yaml", std::string(kDenyFromA) + "  bogusField: 1\n");
  Run r = ferryctl({"workloads", "--manifests", dir.path().string()});
  CHECK(r.code == 1);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Catch::Contains("bad.yaml"));
  CHECK_THAT(r.err, Catch::Contains("bogusField"));
  // check answers as the mesh does: the refused policy denies what it selects, and says why.
  Run check = ferryctl({"check", "shop/a", "shop/b", "--port", "9000", "--manifests",
                        dir.path().string(), "-o", "json"});
  INFO(check.err);
  REQUIRE(check.code == 0);
  json j = json::parse(check.out);
  CHECK(j["allowed"] == false);
  CHECK_THAT(j["warnings"].dump(), Catch::Contains("shop/no-a was refused"));
  CHECK_THAT(j["warnings"].dump(), Catch::Contains("bogusField"));

  TempDir empty;
  Run none = ferryctl({"policies", "--manifests", empty.path().string()});
  CHECK(none.code == 1);
  CHECK_THAT(none.err, Catch::Contains("no Kubernetes objects"));
}

TEST_CASE("ferryctl check --batch: each line answers as the same check given alone", "[cli]") {
  struct Query {
    json query;
    std::vector<std::string> args;  // the same check on the command line
  };
  const std::vector<Query> queries = {
      {{{"source", "demo/n1p1"},
        {"destination", "demo/n1p2"},
        {"method", "GET"},
        {"path", "/index.html"}},
       {"demo/n1p1", "demo/n1p2", "GET", "/index.html"}},
      {{{"source", "demo/n1p1"},
        {"destination", "demo/n1p2"},
        {"method", "GET"},
        {"path", "/admin/users"}},
       {"demo/n1p1", "demo/n1p2", "GET", "/admin/users"}},
      {{{"source", "demo/n1p2"}, {"destination", "demo/n2p2"}}, {"demo/n1p2", "demo/n2p2"}},
      {{{"source", "demo/n1p1"}, {"destination", "demo/n2p2"}}, {"demo/n1p1", "demo/n2p2"}},
      {{{"source", "demo/n1p2"}, {"destination", "demo/n2p2"}, {"plaintext", true}},
       {"demo/n1p2", "demo/n2p2", "--plaintext"}},
      {{{"source", "demo/n1p1"},
        {"destination", "demo/n1p2"},
        {"method", "CONNECT"},
        {"path", ""},
        {"host", "web.demo.svc.cluster.local:8080"},
        {"port", 8080}},
       {"demo/n1p1", "demo/n1p2", "CONNECT", "", "--host", "web.demo.svc.cluster.local:8080",
        "--port", "8080"}},
  };
  std::string input;
  for (const auto& q : queries) {
    input += q.query.dump() + "\n";
  }
  Run batch = ferryctl({"check", "--batch", "--manifests", POLICIES_DIR}, input);
  INFO(batch.err);
  REQUIRE(batch.code == 0);
  std::istringstream lines(batch.out);
  std::string line;
  std::vector<json> answers;
  while (std::getline(lines, line)) {
    answers.push_back(json::parse(line));
  }
  REQUIRE(answers.size() == queries.size());
  std::set<bool> decisions;
  for (size_t i = 0; i < queries.size(); ++i) {
    std::vector<std::string> args = {"check"};
    args.insert(args.end(), queries[i].args.begin(), queries[i].args.end());
    args.insert(args.end(), {"--manifests", POLICIES_DIR, "-o", "json"});
    Run alone = ferryctl(args);
    INFO(queries[i].query.dump());
    REQUIRE(alone.code == 0);
    CHECK(answers[i] == json::parse(alone.out));
    decisions.insert(answers[i]["allowed"].get<bool>());
  }
  CHECK(decisions.size() == 2);  // the queries cover both answers

  // Lines that are not queries are answered with an error each; the others still answer.
  Run mixed = ferryctl({"check", "--batch", "--manifests", POLICIES_DIR},
                       "not json\n{\"source\": \"demo/n1p1\"}\n"
                       "{\"source\": \"demo/n1p1\", \"destination\": \"demo/n1p2\", "
                       "\"method\": \"GET\"}\n"
                       "{\"source\": \"demo/n1p1\", \"destination\": \"demo/n2p2\", \"bogus\": 1}\n"
                       "{\"source\": \"demo/nope\", \"destination\": \"demo/n2p2\"}\n"
                       "{\"source\": \"demo/n1p2\", \"destination\": \"demo/n2p2\"}\n");
  CHECK(mixed.code == 1);
  std::istringstream mixed_lines(mixed.out);
  std::vector<json> got;
  while (std::getline(mixed_lines, line)) {
    got.push_back(json::parse(line));
  }
  REQUIRE(got.size() == 6);
  CHECK(got[0]["error"] == "not JSON");
  CHECK_THAT(got[1]["error"].get<std::string>(), Catch::Contains("destination must be a string"));
  CHECK(got[2]["error"] == "method and path come together");
  CHECK(got[3]["error"] == "unknown field 'bogus'");
  CHECK_THAT(got[4]["error"].get<std::string>(), Catch::Contains("unknown source pod demo/nope"));
  CHECK(got[5]["allowed"] == true);
}

TEST_CASE("ferryctl: bad usage exits 2, bad input exits 1, each with a message", "[cli]") {
  struct Row {
    std::vector<std::string> args;
    int code;
    std::string message;
  };
  const std::string m = POLICIES_DIR;
  const std::vector<Row> rows = {
      {{}, 2, "no command given"},
      {{"frobnicate", "--manifests", m}, 2, "unknown command 'frobnicate'"},
      {{"workloads", "--manifests", m, "--bogus"}, 2, "unknown flag '--bogus'"},
      {{"workloads", "--manifests", m, "--port", "80"}, 2, "unknown flag '--port'"},
      {{"workloads", "--manifests", m, "--admin", "127.0.0.1:1"}, 2, "give one"},
      {{"certs", "--manifests", m}, 2, "unknown flag '--manifests' for certs"},
      {{"status", "--admin"}, 2, "--admin needs a value"},
      {{"status", "--admin", "localhost"}, 1, "--admin must be IPv4:PORT, not 'localhost'"},
      {{"status", "--admin", "127.0.0.1:1"}, 1, "no agent admin API at 127.0.0.1:1"},
      {{"workloads", "--admin", "127.0.0.1:1"}, 1, "no agent admin API at 127.0.0.1:1"},
      {{"workloads", "--manifests"}, 2, "--manifests needs a value"},
      {{"workloads", "--manifests", m, "-o", "yaml"}, 2, "-o must be table or json"},
      {{"workloads", "--manifests", m, "extra"}, 2, "takes no arguments"},
      {{"check", "demo/n1p1", "--manifests", m}, 2, "got 1 argument(s)"},
      {{"check", "demo/n1p1", "demo/n1p2", "GET", "--manifests", m}, 2, "got 3 argument(s)"},
      {{"check", "n1p1", "demo/n1p2", "--manifests", m}, 2, "namespace/name, not 'n1p1'"},
      {{"check", "demo/n1p1", "demo/n1p2", "GET", "admin", "--manifests", m},
       2,
       "PATH must start with '/'"},
      {{"check", "demo/n1p1", "demo/n1p2", "--port", "70000", "--manifests", m},
       2,
       "--port must be a number"},
      {{"check", "demo/n1p1", "demo/n1p2", "--port", "8o", "--manifests", m},
       2,
       "--port must be a number"},
      {{"check", "demo/n1p1", "demo/n1p2", "--header", "novalue", "--manifests", m},
       2,
       "--header must be NAME:VALUE"},
      {{"check", "demo/nope", "demo/n1p2", "--manifests", m},
       1,
       "unknown source pod demo/nope; pods in the manifests: demo/n1p1"},
      {{"check", "demo/n1p1", "other/n1p2", "--manifests", m},
       1,
       "unknown destination pod other/n1p2"},
      {{"workloads", "--manifests", "/nonexistent/ferry"}, 1, "does not exist"},
      {{"check", "--batch", "demo/n1p1", "demo/n1p2", "--manifests", m}, 2, "takes no arguments"},
      {{"workloads", "--batch", "--manifests", m}, 2, "unknown flag '--batch'"},
      {{"stat"}, 2, "stat takes services or workloads"},
      {{"stat", "pods"}, 2, "stat takes services or workloads, not 'pods'"},
      {{"stat", "services", "workloads"}, 2, "stat takes services or workloads"},
      {{"stat", "services", "--window", "soon"}, 2, "--window must be a duration"},
      {{"stat", "services", "--window", "200ms"}, 2, "--window must be at least 1s"},
      {{"stat", "services", "--count", "0", "--watch"}, 2, "--count must be a number"},
      {{"stat", "services", "--count", "2"}, 2, "bounds the frames of --watch"},
      {{"stat", "services", "-n", "Shop_1"}, 2, "--namespace must be a Kubernetes name"},
      {{"stat", "services", "--reporter", "both"}, 2, "--reporter must be destination or source"},
      {{"stat", "services", "--prometheus", "https://prom:9090"}, 2, "must be http://HOST:PORT"},
      {{"stat", "services", "--prometheus", "http://127.0.0.1:1", "--agents", "127.0.0.1:2"},
       2,
       "two sources"},
      {{"stat", "services", "--manifests", m}, 2, "unknown flag '--manifests' for stat"},
      {{"stat", "services", "--agents"}, 2, "--agents needs a value"},
      {{"stat", "services", "--agents", "metrics.local:15020"}, 1, "--agents must be IPv4:PORT"},
      {{"stat", "services", "--agents", "127.0.0.1:1"},
       1,
       "no agent metrics endpoint at 127.0.0.1:1"},
      {{"stat", "workloads", "--prometheus", "http://127.0.0.1:1"},
       1,
       "no Prometheus answers at 127.0.0.1:1"},
  };
  for (const auto& row : rows) {
    std::string joined;
    for (const auto& a : row.args) {
      joined += a + " ";
    }
    INFO("ferryctl " << joined);
    Run r = ferryctl(row.args);
    CHECK(r.code == row.code);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Catch::Contains(row.message));
    if (row.code == 2) {
      CHECK_THAT(r.err, Catch::Contains("usage:"));
    }
  }
}

TEST_CASE("ferryctl: workloads, services and policies list the manifests", "[cli]") {
  Run w = ferryctl({"workloads", "--manifests", POLICIES_DIR, "-o", "json"});
  INFO(w.err);
  REQUIRE(w.code == 0);
  json wj = json::parse(w.out);
  REQUIRE(wj.size() == 4);
  CHECK(wj[0]["name"] == "n1p1");
  CHECK(wj[0]["service_account"] == "client");
  CHECK(wj[0]["ips"][0] == "10.244.1.11");

  Run s = ferryctl({"services", "--manifests", POLICIES_DIR, "-o", "json"});
  REQUIRE(s.code == 0);
  json sj = json::parse(s.out);
  std::vector<std::string> names;
  for (const auto& svc : sj) {
    names.push_back(svc["name"]);
  }
  CHECK(std::find(names.begin(), names.end(), "web") != names.end());
  CHECK(std::find(names.begin(), names.end(), "db") != names.end());

  Run p = ferryctl({"policies", "--manifests", POLICIES_DIR});
  REQUIRE(p.code == 0);
  CHECK_THAT(p.out, Catch::StartsWith("NAMESPACE  NAME"));
  CHECK_THAT(p.out, Catch::Contains("deny-admin"));
  CHECK_THAT(p.out, Catch::Contains("DENY"));
  // header + 6 policies (request-authentication.yaml adds web-orders-need-jwt)
  CHECK(std::count(p.out.begin(), p.out.end(), '\n') == 7);
  CHECK_THAT(p.out, Catch::Contains("web-orders-need-jwt"));

  Run wt = ferryctl({"workloads", "--manifests", POLICIES_DIR});
  REQUIRE(wt.code == 0);
  CHECK_THAT(wt.out, Catch::Contains("demo       n1p2"));

  Run rl = ferryctl({"ratelimits", "--manifests", POLICIES_DIR});
  REQUIRE(rl.code == 0);
  CHECK_THAT(rl.out, Catch::StartsWith("NAMESPACE  NAME        TARGET"));
  CHECK_THAT(rl.out, Catch::Contains("web-limits  Service web:80  100/s burst 100  20/s burst 10"));
  CHECK(std::count(rl.out.begin(), rl.out.end(), '\n') == 2);  // header + 1 policy
  Run rj = ferryctl({"ratelimits", "--manifests", POLICIES_DIR, "-o", "json"});
  REQUIRE(rj.code == 0);
  json limits = json::parse(rj.out);
  REQUIRE(limits.size() == 1);
  CHECK(limits[0]["overrides"][0]["service_accounts"] == json::array({"demo/client"}));
  CHECK(limits[0]["overrides"][0]["limit"]["requests_per_second"] == 50);
  CHECK(limits[0]["refused"].is_null());
}

}  // namespace

namespace ferry::cli {
namespace {

TEST_CASE("ferryctl check: decisions that involve a request principal and claims", "[cli][jwt]") {
  struct Row {
    std::vector<std::string> extra;
    bool allowed;
    const char* policy;
    int rule;
  };
  const Row rows[] = {
      // policies/request-authentication.yaml: /orders needs a token, writes the group claim.
      {{"GET", "/orders"}, false, "demo/web-orders-need-jwt", 0},
      {{"GET", "/orders", "--request-principal", "https://auth.demo.example/alice"},
       true,
       "demo/web-allow-client",
       0},
      {{"POST", "/orders", "--request-principal", "https://auth.demo.example/alice"},
       false,
       "demo/web-orders-need-jwt",
       1},
      {{"POST", "/orders", "--request-principal", "https://auth.demo.example/alice", "--claim",
        "groups=dev", "--claim", "groups=orders-admin"},
       true,
       "demo/web-allow-client",
       0},
  };
  for (const Row& row : rows) {
    std::vector<std::string> args = {"check", "demo/n1p1", "demo/n1p2"};
    args.insert(args.end(), row.extra.begin(), row.extra.end());
    args.insert(args.end(), {"--manifests", POLICIES_DIR, "-o", "json"});
    Run r = ferryctl(args);
    INFO(r.err << r.out);
    REQUIRE(r.code == 0);
    json j = json::parse(r.out);
    CHECK(j["allowed"] == row.allowed);
    CHECK(j["policy"] == row.policy);
    CHECK(j["rule"] == row.rule);
  }
  Run shown = ferryctl({"check", "demo/n1p1", "demo/n1p2", "GET", "/orders", "--request-principal",
                        "https://auth.demo.example/alice", "--manifests", POLICIES_DIR});
  CHECK_THAT(shown.out, Catch::Contains("JWT https://auth.demo.example/alice"));
  Run listed = ferryctl({"requestauthentications", "--manifests", POLICIES_DIR, "-o", "json"});
  REQUIRE(listed.code == 0);
  json ras = json::parse(listed.out);
  REQUIRE(ras.size() == 1);
  CHECK(ras[0]["name"] == "web-jwt");
  REQUIRE(ras[0]["jwt_rules"].size() == 2);
  CHECK(ras[0]["jwt_rules"][0]["keys"] == "inline");
  CHECK(ras[0]["jwt_rules"][1]["keys"] == "https://idp.platform.example/.well-known/jwks.json");
  Run table = ferryctl({"requestauthentications", "--manifests", POLICIES_DIR});
  CHECK_THAT(table.out, Catch::Contains("https://auth.demo.example"));
  Run usage = ferryctl({"check", "demo/n1p1", "demo/n1p2", "GET", "/", "--claim", "a=b",
                        "--manifests", POLICIES_DIR});
  CHECK(usage.code == 2);
  CHECK_THAT(usage.err, Catch::Contains("--request-principal"));
}

}  // namespace
}  // namespace ferry::cli
