// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// `ferryctl check` against the data path (issue 16 point 4): for every combination of a policy
// set, a peer, a port and a request, the decision ferryctl explains and the one real traffic gets
// through two agents fed by ferry-controller must be the same. Rows taken from Istio's documents
// also carry Istio's answer, and both must give it.
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "e2e/mesh.h"
#include "enroll/client.h"
#include "nlohmann/json.hpp"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::e2e {
namespace {

using nlohmann::json;

// Who connects to n2p1. Plaintext peers are pods taken out of the mesh (CNI DEL): nothing
// captures their traffic, so it reaches n2p1's agent without an identity.
struct Peer {
  const char* label;
  int node, index;
  bool plaintext;
};
constexpr Peer kPeers[] = {{"cross-node mTLS n1p1", 1, 1, false},
                           {"cross-node mTLS n1p2", 1, 2, false},
                           {"same-node mTLS n2p2", 2, 2, false},
                           {"cross-node plaintext n1p3", 1, 3, true},
                           {"same-node plaintext n2p3", 2, 3, true}};

// n2p1's ports: the "diff" Service names 7001 and 7002 TCP and 7080 and 7081 HTTP; 7003 and 7004
// are in no Service (TCP, as Istio's task leaves its port 9002 out of the Service).
constexpr uint16_t kTcpPorts[] = {7001, 7002, 7003, 7004};
constexpr uint16_t kHttpPorts[] = {7080, 7081};

struct Request {
  const char* method;
  const char* path;
  const char* authority;
  const char* header;  // "name: value" or empty
};
constexpr char kSvcHost[] = "diff.default.svc.cluster.local";
const Request kRequests[] = {{"GET", "/", kSvcHost, ""},
                             {"GET", "/admin/users", kSvcHost, ""},
                             {"POST", "/api/items", kSvcHost, "x-user: alice"},
                             {"DELETE", "/api/items", kSvcHost, ""},
                             {"GET", "/public/index.html", "admin.example", ""},
                             {"GET", "/a/../admin", "Admin.Example.", ""}};

struct Probe {
  const Peer* peer;
  uint16_t port;
  const Request* request;  // null on a TCP port: the connection is the question
  std::string describe() const {
    std::string r = request ? absl::StrCat(request->method, " ", request->path, " host ",
                                           request->authority, " ", request->header)
                            : "connection";
    return absl::StrCat(peer->label, " -> n2p1:", port, " ", r);
  }
};

std::vector<Probe> allProbes() {
  std::vector<Probe> probes;
  for (const Peer& peer : kPeers) {
    for (uint16_t port : kTcpPorts) {
      probes.push_back({&peer, port, nullptr});
    }
    for (uint16_t port : kHttpPorts) {
      for (const Request& r : kRequests) {
        probes.push_back({&peer, port, &r});
      }
    }
  }
  return probes;
}

// A policy set: the manifest applied, and Istio's answer where Istio's documents give one.
struct PolicySet {
  std::string name;
  std::string yaml;
  std::function<bool(const Probe&)> istio;
};

std::string policy(const std::string& name, const std::string& action, const std::string& rules,
                   const std::string& annotations = "") {
  return absl::StrCat("apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n",
                      "metadata:\n  name: ", name, "\n  namespace: default\n", annotations,
                      "spec:\n  selector:\n    matchLabels:\n      app: n2p1\n  action: ", action,
                      "\n", rules.empty() ? "" : "  rules:\n" + rules);
}

// AUDIT decides nothing: the set with no policy that decides. (A policy selecting no pod would
// not change any node's state, and the test waits for node2's state to change.)
const std::string kAuditOnly = policy("audit-only", "AUDIT", "  - {}\n");

bool isTcp(const Probe& p) {
  return p.request == nullptr;
}

std::vector<PolicySet> documentedSets() {
  std::vector<PolicySet> sets;
  sets.push_back({"no policy but AUDIT", kAuditOnly, [](const Probe&) { return true; }});
  // Istio, "Authorization for TCP traffic" (tasks/security/authorization/authz-tcp), ports
  // 9000/9001/9002 as 7001/7002/7003. Step 1: ALLOW on ports 9000 and 9001 admits those two.
  sets.push_back({"istio tcp task: ALLOW ports 9000 9001",
                  policy("tcp-policy", "ALLOW",
                         "  - to:\n    - operation:\n"
                         "        ports: [\"7001\", \"7002\"]\n"),
                  [](const Probe& p) { return p.port == 7001 || p.port == 7002; }});
  // Step 2: an HTTP-only field (methods) in an ALLOW rule on a TCP port: the rule never
  // matches, so the ALLOW policy admits nothing.
  sets.push_back({"istio tcp task: ALLOW methods GET on port 9000",
                  policy("tcp-policy", "ALLOW",
                         "  - to:\n    - operation:\n"
                         "        methods: [\"GET\"]\n"
                         "        ports: [\"7001\"]\n"),
                  [](const Probe& p) {
                    // On the HTTP ports the port does not match either.
                    (void)p;
                    return false;
                  }});
  // Step 3: the same fields in a DENY rule: methods dropped, port 9000 denied, 9001 allowed.
  sets.push_back({"istio tcp task: DENY methods GET on port 9000",
                  policy("tcp-policy", "DENY",
                         "  - to:\n    - operation:\n"
                         "        methods: [\"GET\"]\n"
                         "        ports: [\"7001\"]\n"),
                  [](const Probe& p) { return p.port != 7001; }});
  // Any authenticated peer (Istio security reference: principals "*" and namespaces "*"
  // require mTLS).
  sets.push_back({"ALLOW principals *",
                  policy("any-peer", "ALLOW",
                         "  - from:\n    - source:\n"
                         "        principals: [\"*\"]\n"),
                  [](const Probe& p) { return !p.peer->plaintext; }});
  sets.push_back({"ALLOW namespaces *",
                  policy("any-ns", "ALLOW",
                         "  - from:\n    - source:\n"
                         "        namespaces: [\"*\"]\n"),
                  [](const Probe& p) { return !p.peer->plaintext; }});
  // Istio's "deny requests without mTLS": DENY notPrincipals "*".
  sets.push_back({"DENY notPrincipals *",
                  policy("require-mtls", "DENY",
                         "  - from:\n    - source:\n"
                         "        notPrincipals: [\"*\"]\n"),
                  [](const Probe& p) { return !p.peer->plaintext; }});
  // istio.io/dry-run: reported, not enforced.
  sets.push_back(
      {"dry-run ALLOW for nobody",
       policy("dry", "ALLOW", "  - from:\n    - source:\n        principals: [\"nobody\"]\n",
              "  annotations:\n    istio.io/dry-run: \"true\"\n"),
       [](const Probe&) { return true; }});
  // ALLOW with no rules admits nothing; ALLOW with an empty rule admits everything.
  sets.push_back(
      {"ALLOW no rules", policy("allow-none", "ALLOW", ""), [](const Probe&) { return false; }});
  sets.push_back({"ALLOW empty rule", policy("allow-all", "ALLOW", "  - {}\n"),
                  [](const Probe&) { return true; }});
  sets.push_back({"DENY empty rule", policy("deny-all", "DENY", "  - {}\n"),
                  [](const Probe&) { return false; }});
  // serviceAccounts (Istio's API): only n1p1's account.
  sets.push_back({"ALLOW serviceAccounts default/sa-n1p1",
                  policy("by-sa", "ALLOW",
                         "  - from:\n    - source:\n"
                         "        serviceAccounts: [\"default/sa-n1p1\"]\n"),
                  [](const Probe& p) {
                    return !p.peer->plaintext && p.peer->node == 1 && p.peer->index == 1;
                  }});
  // Path rules apply on HTTP ports only; DENY /admin* (after normalization) on HTTP, nothing
  // on TCP ports (a DENY whose only field is HTTP-only keeps an empty rule there: Istio drops
  // the field, and a rule with nothing left matches every connection).
  sets.push_back({"DENY paths /admin*",
                  policy("deny-admin", "DENY",
                         "  - to:\n    - operation:\n"
                         "        paths: [\"/admin*\"]\n"),
                  [](const Probe& p) {
                    if (isTcp(p)) {
                      return false;
                    }
                    return std::string(p.request->path) != "/admin/users" &&
                           std::string(p.request->path) != "/a/../admin";
                  }});
  return sets;
}

// Sets that only ask ferryctl and the data path to agree: hand-written shapes and a generated
// table from a fixed seed.
std::vector<PolicySet> agreementSets(const Mesh& m) {
  const std::string n1p1 = m.pod(1, 1).ipv4, n2p3 = m.pod(2, 3).ipv4;
  std::vector<PolicySet> sets;
  auto add = [&](std::string name, std::string yaml) {
    sets.push_back({std::move(name), std::move(yaml), nullptr});
  };
  add("ALLOW source {}", policy("empty-source", "ALLOW", "  - from:\n    - source: {}\n"));
  add("ALLOW principal prefix sa-n1*", policy("prefix", "ALLOW",
                                              "  - from:\n    - source:\n        principals: "
                                              "[\"cluster.local/ns/default/sa/sa-n1*\"]\n"));
  add("DENY principal suffix *n2p2",
      policy("suffix", "DENY", "  - from:\n    - source:\n        principals: [\"*n2p2\"]\n"));
  add("ALLOW notNamespaces other",
      policy("not-ns", "ALLOW", "  - from:\n    - source:\n        notNamespaces: [\"other\"]\n"));
  add("ALLOW ipBlocks n1p1",
      policy("ip", "ALLOW",
             absl::StrCat("  - from:\n    - source:\n        ipBlocks: [\"", n1p1, "/32\"]\n")));
  add("DENY notIpBlocks node 2",
      policy("not-ip", "DENY",
             "  - from:\n    - source:\n        notIpBlocks: [\"10.244.2.0/24\"]\n"));
  add("ALLOW remoteIpBlocks n2p3",
      policy(
          "remote-ip", "ALLOW",
          absl::StrCat("  - from:\n    - source:\n        remoteIpBlocks: [\"", n2p3, "/32\"]\n")));
  add("DENY requestPrincipals *",
      policy("jwt", "DENY", "  - from:\n    - source:\n        requestPrincipals: [\"*\"]\n"));
  add("ALLOW hosts admin.example",
      policy("hosts", "ALLOW", "  - to:\n    - operation:\n        hosts: [\"admin.example\"]\n"));
  add("ALLOW when x-user alice",
      policy("when", "ALLOW",
             "  - when:\n    - key: request.headers[x-user]\n      values: [\"alice\"]\n"));
  add("ALLOW + DENY + AUDIT",
      absl::StrCat(
          policy("a", "ALLOW", "  - to:\n    - operation:\n        ports: [\"7080\", \"7001\"]\n"),
          "---\n",
          policy("d", "DENY", "  - from:\n    - source:\n        principals: [\"*sa-n1p2\"]\n"),
          "---\n", policy("au", "AUDIT", "  - {}\n")));
  add("DENY notMethods GET notPorts 7002", policy("not-methods", "DENY",
                                                  "  - to:\n    - operation:\n        notMethods: "
                                                  "[\"GET\"]\n        notPorts: [\"7002\"]\n"));
  add("ALLOW methods on HTTP or port 7003",
      policy("two-rules", "ALLOW",
             "  - to:\n    - operation:\n        methods: [\"GET\", \"POST\"]\n"
             "  - to:\n    - operation:\n        ports: [\"7003\"]\n"));
  add("CUSTOM refused: fails closed", policy("custom", "CUSTOM", "  - {}\n"));

  // Generated: 1-3 policies of 1-2 rules, each rule a from, a to and a when drawn from pools that
  // name these pods, ports, paths and hosts in exact, prefix, suffix, "*" and not forms.
  std::mt19937 rng(16004);
  auto pick = [&](const std::vector<std::string>& pool) { return pool[rng() % pool.size()]; };
  auto list = [&](const std::vector<std::string>& pool) {
    std::vector<std::string> out = {"\"" + pick(pool) + "\""};
    if (rng() % 3 == 0) {
      out.push_back("\"" + pick(pool) + "\"");
    }
    return "[" + absl::StrJoin(out, ", ") + "]";
  };
  const std::vector<std::string> principals = {
      "cluster.local/ns/default/sa/sa-n1p1", "cluster.local/ns/default/sa/sa-n1p2",
      "cluster.local/ns/default/sa/sa-n2p2", "*",
      "cluster.local/ns/default/sa/sa-n1*",  "*sa-n2p2",
      "cluster.local/ns/other/sa/sa-n1p1"};
  const std::vector<std::string> namespaces = {"default", "other", "*", "def*", "*ult"};
  const std::vector<std::string> accounts = {"default/sa-n1p1", "default/sa-n2p2", "other/sa-n1p1"};
  const std::vector<std::string> blocks = {n1p1 + "/32", "10.244.1.0/24", n2p3 + "/32",
                                           "10.0.0.0/8"};
  const std::vector<std::string> ports = {"7001", "7002", "7003", "7080", "7081"};
  const std::vector<std::string> methods = {"GET", "POST", "DELETE"};
  const std::vector<std::string> paths = {"/admin*", "/api/*", "/", "*.html", "/public/*"};
  const std::vector<std::string> hosts = {kSvcHost, "admin.example", "*.example", "diff.default.*"};
  const std::vector<std::pair<std::string, const std::vector<std::string>*>> from_fields = {
      {"principals", &principals},    {"notPrincipals", &principals},
      {"namespaces", &namespaces},    {"notNamespaces", &namespaces},
      {"serviceAccounts", &accounts}, {"notServiceAccounts", &accounts},
      {"ipBlocks", &blocks},          {"notIpBlocks", &blocks}};
  const std::vector<std::pair<std::string, const std::vector<std::string>*>> to_fields = {
      {"ports", &ports}, {"notPorts", &ports}, {"methods", &methods}, {"notMethods", &methods},
      {"paths", &paths}, {"notPaths", &paths}, {"hosts", &hosts}};
  const char* const actions[] = {"ALLOW", "DENY", "AUDIT", "ALLOW", "DENY"};
  for (int s = 0; s < 26; ++s) {
    std::vector<std::string> docs;
    const int n_policies = 1 + static_cast<int>(rng() % 3);
    for (int p = 0; p < n_policies; ++p) {
      std::string rules;
      const int n_rules = 1 + static_cast<int>(rng() % 2);
      for (int r = 0; r < n_rules; ++r) {
        std::string rule;
        if (rng() % 4 != 0) {
          const auto& [field, pool] = from_fields[rng() % from_fields.size()];
          rule +=
              absl::StrCat("    from:\n    - source:\n        ", field, ": ", list(*pool), "\n");
        }
        if (rng() % 2 == 0) {
          const auto& [field, pool] = to_fields[rng() % to_fields.size()];
          rule +=
              absl::StrCat("    to:\n    - operation:\n        ", field, ": ", list(*pool), "\n");
        }
        if (rng() % 6 == 0) {
          rule += "    when:\n    - key: request.headers[x-user]\n      values: [\"alice\"]\n";
        }
        rules += rule.empty() ? "  - {}\n" : "  -" + rule.substr(3);
      }
      docs.push_back(
          policy(absl::StrCat("gen-", s, "-", p), actions[rng() % std::size(actions)], rules));
    }
    add(absl::StrCat("generated ", s), absl::StrJoin(docs, "---\n"));
  }
  return sets;
}

std::string ferryctlPath() {
  return FERRYCTL_PATH;
}

// ferryctl check --batch over the mesh's manifests: allowed or not, per probe.
std::vector<json> ferryctlAnswers(const Mesh& m, const std::vector<Probe>& probes) {
  const std::string queries = m.manifestsDir() + "/../differential-queries.jsonl";
  {
    std::ofstream out(queries);
    for (const Probe& p : probes) {
      json q = {{"source", absl::StrCat("default/n", p.peer->node, "p", p.peer->index)},
                {"destination", "default/n2p1"},
                {"port", p.port},
                {"plaintext", p.peer->plaintext}};
      if (p.request) {
        q["method"] = p.request->method;
        q["path"] = p.request->path;
        q["host"] = p.request->authority;
        std::string header = p.request->header;
        if (!header.empty()) {
          q["headers"] = {
              {header.substr(0, header.find(':')), header.substr(header.find(':') + 2)}};
        }
      }
      out << q.dump() << "\n";
    }
  }
  std::string cmd = absl::StrCat(ferryctlPath(), " check --batch --manifests ", m.manifestsDir(),
                                 " < ", queries, " 2>&1");
  FILE* f = ::popen(cmd.c_str(), "r");
  REQUIRE(f != nullptr);
  std::vector<json> answers;
  char* line = nullptr;
  size_t cap = 0;
  while (::getline(&line, &cap, f) > 0) {
    answers.push_back(json::parse(line, nullptr, false));
  }
  ::free(line);
  const int rc = ::pclose(f);
  INFO("ferryctl exit " << rc);
  REQUIRE(answers.size() == probes.size());
  return answers;
}

// Real traffic: each peer runs its probes at once from its pod; all peers in parallel.
std::vector<std::string> dataPathAnswers(Mesh& m, const std::vector<Probe>& probes) {
  std::map<const Peer*, json> per_peer;
  for (size_t i = 0; i < probes.size(); ++i) {
    const Probe& p = probes[i];
    json probe = {{"id", std::to_string(i)},
                  {"host", m.pod(2, 1).ipv4},
                  {"port", p.port},
                  {"kind", p.request ? "http" : "tcp"}};
    if (p.request) {
      probe["method"] = p.request->method;
      probe["path"] = p.request->path;
      probe["authority"] = p.request->authority;
      std::string header = p.request->header;
      probe["headers"] = json::object();
      if (!header.empty()) {
        probe["headers"][header.substr(0, header.find(':'))] = header.substr(header.find(':') + 2);
      }
    }
    per_peer[p.peer].push_back(probe);
  }
  std::map<const Peer*, absl::StatusOr<std::string>> outputs;
  for (const auto& [peer, list] : per_peer) {
    outputs.emplace(peer, absl::UnknownError("not run"));
  }
  std::vector<std::thread> threads;
  for (const auto& [peer, list] : per_peer) {
    threads.emplace_back([&, peer = peer, spec = list.dump()] {
      outputs.at(peer) =
          m.run(m.pod(peer->node, peer->index),
                {"/usr/bin/python3", meshAppsScript(), "probe", "--port=0", "--text=" + spec});
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  std::vector<std::string> results(probes.size());
  for (const auto& [peer, out] : outputs) {
    INFO(peer->label);
    REQUIRE_OK(out);
    json got = json::parse(*out);
    for (const auto& [id, result] : got.items()) {
      results.at(std::stoul(id)) = result.get<std::string>();
    }
  }
  return results;
}

TEST_CASE("ferryctl check and the data path decide alike on every generated row",
          "[privileged][e2e]") {
  FERRY_REQUIRE_ROOT();
  MeshOptions options;
  options.pods_per_node = 3;
  options.controller = true;
  auto mesh = Mesh::start(options);
  REQUIRE_OK(mesh);
  Mesh& m = **mesh;
  absl::Status svc = m.applyManifest("service-diff.yaml", R"(apiVersion: v1
kind: Service
metadata:
  name: diff
  namespace: default
spec:
  clusterIP: 10.96.0.30
  selector:
    app: n2p1
  ports:
  - name: tcp-a
    port: 7001
  - name: tcp-b
    port: 7002
  - name: http-a
    port: 7080
  - name: http-b
    port: 7081
)");
  REQUIRE_OK(svc);
  for (uint16_t port : kTcpPorts) {
    absl::Status app =
        m.startApp(m.pod(2, 1), {"echo-server", absl::StrCat("--port=", port)}, port);
    REQUIRE_OK(app);
  }
  for (uint16_t port : kHttpPorts) {
    absl::Status app =
        m.startApp(m.pod(2, 1), {"http-server", absl::StrCat("--port=", port)}, port);
    REQUIRE_OK(app);
  }
  for (int node : {1, 2}) {
    absl::Status del = enroll::delPod(m.enrollSocket(node), Mesh::uidOf(m.pod(node, 3)));
    REQUIRE_OK(del);
  }

  std::vector<PolicySet> sets = documentedSets();
  for (PolicySet& s : agreementSets(m)) {
    sets.push_back(std::move(s));
  }
  const std::vector<Probe> probes = allProbes();
  std::vector<std::string> disagreements, not_istio, unclear;
  size_t rows = 0, documented = 0, allowed = 0;
  for (const PolicySet& set : sets) {
    // The policies select n2p1: only node2's state changes.
    auto applied = m.applyManifestOn("differential-policies.yaml", set.yaml, {2});
    INFO(set.name << "\n" << set.yaml);
    REQUIRE_OK(applied);
    std::vector<json> tool = ferryctlAnswers(m, probes);
    std::vector<std::string> wire = dataPathAnswers(m, probes);
    for (size_t i = 0; i < probes.size(); ++i) {
      ++rows;
      const json& t = tool[i];
      const std::string row = absl::StrCat("[", set.name, "] ", probes[i].describe());
      if (!t.contains("allowed")) {
        unclear.push_back(absl::StrCat(row, ": ferryctl ", t.dump()));
        continue;
      }
      const bool tool_allows = t["allowed"].get<bool>();
      if (wire[i] != "allow" && wire[i] != "deny") {
        unclear.push_back(absl::StrCat(row, ": data path ", wire[i]));
        continue;
      }
      const bool wire_allows = wire[i] == "allow";
      allowed += wire_allows;
      if (tool_allows != wire_allows) {
        disagreements.push_back(absl::StrCat(row, ": ferryctl ", tool_allows ? "allow" : "deny",
                                             " (", t["reason"].get<std::string>(), " ",
                                             t["summary"].get<std::string>(), "), data path ",
                                             wire[i]));
      }
      if (set.istio) {
        ++documented;
        const bool istio = set.istio(probes[i]);
        if (istio != tool_allows || istio != wire_allows) {
          not_istio.push_back(absl::StrCat(row, ": Istio ", istio ? "allow" : "deny", ", ferryctl ",
                                           tool_allows ? "allow" : "deny", ", data path ",
                                           wire[i]));
        }
      }
    }
  }
  std::cout << "policy differential: " << sets.size() << " policy sets, " << rows << " rows ("
            << documented << " with Istio's documented answer), " << allowed << " allowed, "
            << disagreements.size() << " disagreements, " << not_istio.size()
            << " not Istio's answer, " << unclear.size() << " unclear\n";
  for (const auto* list : {&disagreements, &not_istio, &unclear}) {
    for (size_t i = 0; i < list->size() && i < 300; ++i) {
      std::cout << "  " << (*list)[i] << "\n";
    }
  }
  auto first = [](const std::vector<std::string>& v) {
    return absl::StrJoin(v.begin(), v.begin() + std::min<size_t>(v.size(), 40), "\n");
  };
  INFO("disagreements:\n" << first(disagreements));
  INFO("not Istio's answer:\n" << first(not_istio));
  INFO("unclear:\n" << first(unclear));
  CHECK(rows >= 2000);
  CHECK(documented >= 300);
  CHECK(allowed > 0);
  CHECK(allowed < rows);
  CHECK(disagreements.empty());
  CHECK(not_istio.empty());
  CHECK(unclear.empty());
}

}  // namespace
}  // namespace ferry::e2e
