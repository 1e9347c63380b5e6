// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Standalone mode: a folder of manifests, reloaded when a file changes.
#include "controller/standalone_source.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <optional>

#include "controller/view_testing.h"
#include "k8s/manifest_bombs.h"

namespace ferry::controller {
namespace {

namespace fs = std::filesystem;
using controller::testing::hasKey;
using controller::testing::hasWorkload;
using controller::testing::standIn;
using controller::testing::waitUntil;
using std::chrono::seconds;

constexpr char kWorkloads[] = R"(apiVersion: v1
kind: Namespace
metadata:
  name: demo
  labels:
    ferry.dev/mesh: enabled
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: demo
  uid: uid-web
  labels: {app: web}
spec:
  nodeName: node1
  serviceAccountName: web
  containers: [{name: app, image: web}]
status:
  podIP: 10.244.1.10
  podIPs: [{ip: 10.244.1.10}]
---
apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: demo
  uid: uid-client
  labels: {app: client}
spec:
  nodeName: node2
  serviceAccountName: client
  containers: [{name: app, image: client}]
status:
  podIP: 10.244.2.10
  podIPs: [{ip: 10.244.2.10}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
)";

StoreOptions standaloneOptions() {
  StoreOptions o;
  o.endpoints_from_selectors = true;
  return o;
}

std::string policy(const std::string& name, const std::string& app, const std::string& action) {
  return "apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata:\n"
         "  name: " +
         name +
         "\n  namespace: demo\nspec:\n  selector:\n    matchLabels:\n"
         "      app: " +
         app + "\n  action: " + action +
         "\n  rules:\n  - to:\n"
         "    - operation:\n        methods: [GET]\n";
}

struct Folder {
  fs::path path;
  Folder() {
    char tmpl[] = "/tmp/ferry-standalone-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~Folder() { fs::remove_all(path); }
  // Written to a temporary name and renamed into place, as editors and kubectl cp do.
  void write(const std::string& name, const std::string& text) const {
    fs::create_directories((path / name).parent_path());
    const fs::path tmp = path / (".tmp-" + fs::path(name).filename().string());
    std::ofstream(tmp) << text;
    fs::rename(tmp, path / name);
  }
};

struct Fixture {
  Folder folder;
  StateStore store{standaloneOptions()};
  std::unique_ptr<StandaloneSource> source;

  void start() {
    StandaloneOptions options;
    options.debounce = std::chrono::milliseconds(20);
    source = std::make_unique<StandaloneSource>(folder.path, store, options);
    REQUIRE(source->start().ok());
    REQUIRE(source->waitForSync(seconds(10)));
  }
  // Applies a file change and waits for the reload it causes.
  void change(const std::function<void()>& edit) {
    const uint64_t seen = source->reloads();
    edit();
    REQUIRE(source->waitForReload(seen, seconds(10)));
  }
};

TEST_CASE("standalone: the folder is loaded into node views, endpoints from selectors") {
  Fixture f;
  f.folder.write("workloads.yaml", kWorkloads);
  f.folder.write("policies/web.yaml", policy("web-allow", "web", "ALLOW"));
  f.start();
  auto n1 = f.store.snapshotFor("node1");
  CHECK(hasWorkload(n1, "demo", "web"));
  CHECK(hasKey(n1.policies, "demo", "web-allow"));
  auto n2 = f.store.snapshotFor("node2");
  CHECK(n2.policies.empty());
  REQUIRE(n2.endpoints.size() == 1);
  REQUIRE(n2.endpoints[0].endpoints.size() == 1);
  CHECK(n2.endpoints[0].endpoints[0].ip == "10.244.1.10");
  CHECK(n2.endpoints[0].endpoints[0].workload_uid == "uid-web");
  CHECK(hasWorkload(n2, "demo", "web"));  // the remote endpoint's identity
  CHECK(f.store.stats().rejected.load() == 0);
}

constexpr char kMorePods[] = R"(apiVersion: v1
kind: Namespace
metadata:
  name: plain
---
apiVersion: v1
kind: Pod
metadata:
  name: lone
  namespace: demo
  uid: uid-lone
  labels: {app: lone, version: v3, pod-template-hash: 7c9d}
spec:
  nodeName: node3
  serviceAccountName: lone
  containers: [{name: app, image: lone}]
status:
  podIP: 10.244.3.10
  podIPs: [{ip: 10.244.3.10}, {ip: fd00:244::3:10}]
---
apiVersion: v1
kind: Pod
metadata:
  name: outside
  namespace: plain
  uid: uid-outside
spec:
  nodeName: node3
  containers: [{name: app, image: outside}]
status:
  podIP: 10.244.3.11
---
apiVersion: v1
kind: Pod
metadata:
  name: pending
  namespace: demo
  uid: uid-pending
spec:
  containers: [{name: app, image: pending}]
)";

const model::Workload* indexed(const model::NodeSnapshot& s, const std::string& uid) {
  for (const auto& w : s.pod_index) {
    if (w.uid == uid) {
      return &w;
    }
  }
  return nullptr;
}

TEST_CASE("standalone: a node running a mesh pod gets the pod index of every other pod") {
  Fixture f;
  f.folder.write("workloads.yaml", kWorkloads);
  f.folder.write("more.yaml", kMorePods);
  f.start();
  auto n1 = f.store.snapshotFor("node1");
  // node1 runs web; client (node2) and lone (node3) are behind no Service of node1's view.
  const model::Workload* lone = indexed(n1, "uid-lone");
  REQUIRE(lone != nullptr);
  CHECK(lone->mesh_enabled);
  CHECK(lone->node == "node3");
  CHECK(lone->service_account == "lone");
  CHECK(lone->ips == std::vector<std::string>{"10.244.3.10", "fd00:244::3:10"});
  CHECK(lone->labels == model::Labels{{"app", "lone"}, {"version", "v3"}});  // telemetry only
  REQUIRE(indexed(n1, "uid-client") != nullptr);
  REQUIRE(indexed(n1, "uid-outside") != nullptr);
  CHECK_FALSE(indexed(n1, "uid-outside")->mesh_enabled);  // namespace not in the mesh
  CHECK(indexed(n1, "uid-pending") == nullptr);           // no address yet
  CHECK(indexed(n1, "uid-web") == nullptr);               // a full workload of the view
  // On node2, web is the endpoint of a Service: a full workload, not repeated in the index.
  auto n2 = f.store.snapshotFor("node2");
  CHECK(hasWorkload(n2, "demo", "web"));
  CHECK(indexed(n2, "uid-web") == nullptr);
  CHECK(indexed(n2, "uid-lone") != nullptr);
  // A node with no mesh pod calls nothing through the mesh: no index.
  CHECK(f.store.snapshotFor("node9").pod_index.empty());

  // The index follows the cluster: a pod gone from the folder leaves every index.
  f.change([&] { fs::remove(f.folder.path / "more.yaml"); });
  CHECK(waitUntil([&] { return indexed(f.store.snapshotFor("node1"), "uid-lone") == nullptr; }));
  CHECK(indexed(f.store.snapshotFor("node1"), "uid-client") != nullptr);
}

TEST_CASE("standalone: edits, new files, new folders and deletions are reloaded") {
  Fixture f;
  f.folder.write("workloads.yaml", kWorkloads);
  f.folder.write("web.yaml", policy("p", "web", "ALLOW"));
  f.start();
  REQUIRE(hasKey(f.store.snapshotFor("node1").policies, "demo", "p"));

  f.change([&] { f.folder.write("web.yaml", policy("p", "client", "ALLOW")); });
  CHECK(waitUntil([&] { return hasKey(f.store.snapshotFor("node2").policies, "demo", "p"); }));
  CHECK_FALSE(hasKey(f.store.snapshotFor("node1").policies, "demo", "p"));

  f.change([&] { f.folder.write("more/deeper/deny.yaml", policy("d", "web", "DENY")); });
  CHECK(waitUntil([&] { return hasKey(f.store.snapshotFor("node1").policies, "demo", "d"); }));

  // A file added to the new folder afterwards is seen too (the folder got its own watch).
  f.change([&] { f.folder.write("more/deeper/audit.yaml", policy("a", "web", "AUDIT")); });
  CHECK(waitUntil([&] { return hasKey(f.store.snapshotFor("node1").policies, "demo", "a"); }));

  f.change([&] { fs::remove(f.folder.path / "web.yaml"); });
  CHECK(waitUntil([&] { return f.store.count(k8s::Kind::kAuthorizationPolicy) == 2; }));
  CHECK(f.store.stats().rejected.load() == 0);
}

TEST_CASE("standalone: a folder that cannot be read keeps the last state, then reloads") {
  // The source runs in a child process that then uses up its descriptors, so listing the folder
  // fails with EMFILE (issue 17: an empty reload there dropped every object).
  Folder folder;
  folder.write("workloads.yaml", kWorkloads);
  folder.write("web.yaml", policy("p", "web", "ALLOW"));
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  std::fflush(nullptr);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    StateStore store{standaloneOptions()};
    StandaloneOptions options;
    options.debounce = std::chrono::milliseconds(20);
    StandaloneSource source(folder.path, store, options);
    if (!source.start().ok() || !source.waitForSync(seconds(10))) {
      _exit(1);
    }
    std::vector<int> hogs;
    for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) {
      hogs.push_back(fd);
    }
    const uint64_t seen = source.reloads();
    char c = 'r';
    (void)!::write(ready[1], &c, 1);
    // The parent adds a policy: the reload this wakes cannot list the folder.
    if (!source.waitForReload(seen, seconds(10))) {
      _exit(2);
    }
    if (!hasKey(store.snapshotFor("node1").policies, "demo", "p") ||
        !hasWorkload(store.snapshotFor("node1"), "demo", "web")) {
      _exit(3);  // the store was emptied
    }
    for (int fd : hogs) {
      ::close(fd);
    }
    // Readable again: the retry picks the new policy up without another file event.
    bool ok = waitUntil([&] { return hasKey(store.snapshotFor("node1").policies, "demo", "q"); });
    _exit(ok ? 0 : 4);
  }
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  folder.write("more.yaml", policy("q", "web", "DENY"));
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST_CASE("standalone: a malformed policy is refused and fails closed while the others apply") {
  Fixture f;
  f.folder.write("workloads.yaml", kWorkloads);
  f.folder.write("policies.yaml",
                 policy("good", "web", "ALLOW") + "---\n" + policy("bad", "web", "PERHAPS"));
  f.start();
  auto n1 = f.store.snapshotFor("node1");
  CHECK(hasKey(n1.policies, "demo", "good"));
  // The refused ALLOW does not vanish (that would open its workloads): a deny-all stand-in
  // with the same key and selector takes its place.
  const auto* bad = standIn(n1.policies, "bad");
  REQUIRE(bad != nullptr);
  CHECK(bad->action == model::PolicyAction::kDeny);
  CHECK(bad->refused.find("PERHAPS") != std::string::npos);
  CHECK(f.store.stats().rejected.load() == 1);
  CHECK(f.store.failingClosedPolicies() == 1);
  REQUIRE_FALSE(f.store.recentRejections().empty());
  CHECK(f.store.recentRejections().back().find("policies.yaml") != std::string::npos);

  // Breaking the good one makes it fail closed too; fixing the bad one applies it.
  f.change([&] {
    f.folder.write("policies.yaml",
                   policy("good", "web", "NEVER") + "---\n" + policy("bad", "web", "DENY"));
  });
  REQUIRE(waitUntil([&] {
    auto policies = f.store.snapshotFor("node1").policies;
    return standIn(policies, "bad") == nullptr && standIn(policies, "good") != nullptr;
  }));
  CHECK(f.store.failingClosedPolicies() == 1);
  CHECK(f.store.stats().rejected.load() == 2);
}

// A copy: the snapshot is usually a temporary that ends with the full expression.
std::optional<model::AuthorizationPolicy> policyNamed(const model::NodeSnapshot& s,
                                                      const std::string& name) {
  for (const auto& p : s.policies) {
    if (p.key.name == name) {
      return p;
    }
  }
  return std::nullopt;
}

bool rejectedFrom(const StateStore& store, const fs::path& file, const std::string& reason) {
  for (const auto& r : store.recentRejections()) {
    if (r.rfind(file.string(), 0) == 0 && r.find(reason) != std::string::npos) {
      return true;
    }
  }
  return false;
}

TEST_CASE("standalone: a duplicate in a file sorting first never replaces the policy in force") {
  Fixture f;
  f.folder.write("workloads.yaml", kWorkloads);
  f.folder.write("z-policies.yaml", policy("guard", "web", "DENY"));
  f.start();
  auto guard = policyNamed(f.store.snapshotFor("node1"), "guard");
  REQUIRE(guard.has_value());
  REQUIRE(guard->action == model::PolicyAction::kDeny);

  const fs::path newcomer = f.folder.path / "a-newcomer.yaml";
  f.change([&] { f.folder.write("a-newcomer.yaml", policy("guard", "web", "ALLOW")); });
  REQUIRE(waitUntil([&] { return f.store.stats().rejected.load() >= 1; }));
  guard = policyNamed(f.store.snapshotFor("node1"), "guard");
  REQUIRE(guard.has_value());
  CHECK(guard->action == model::PolicyAction::kDeny);
  CHECK(guard->refused.empty());
  // The refusal is logged against the newcomer's file, naming the original.
  CHECK(rejectedFrom(f.store, newcomer, "duplicates the object"));
  CHECK(rejectedFrom(f.store, newcomer, (f.folder.path / "z-policies.yaml").string()));
  for (const auto& r : f.store.recentRejections()) {
    CHECK(r.rfind((f.folder.path / "z-policies.yaml").string(), 0) != 0);
  }

  // Editing the original (now the newest file) keeps it in force.
  f.change([&] {
    f.folder.write("z-policies.yaml",
                   policy("guard", "web", "DENY") + "---\n" + policy("audit", "web", "AUDIT"));
  });
  REQUIRE(
      waitUntil([&] { return policyNamed(f.store.snapshotFor("node1"), "audit").has_value(); }));
  CHECK(policyNamed(f.store.snapshotFor("node1"), "guard")->action == model::PolicyAction::kDeny);

  // A fresh start on the same folder decides the same way: the older file wins.
  fs::last_write_time(f.folder.path / "z-policies.yaml",
                      fs::last_write_time(newcomer) - std::chrono::seconds(1));
  StateStore fresh{standaloneOptions()};
  StandaloneSource again(f.folder.path, fresh);
  REQUIRE(again.start().ok());
  again.stop();
  guard = policyNamed(fresh.snapshotFor("node1"), "guard");
  REQUIRE(guard.has_value());
  CHECK(guard->action == model::PolicyAction::kDeny);
  CHECK(rejectedFrom(fresh, newcomer, "duplicates the object"));
}

TEST_CASE("standalone: a second Service on a ClusterIP in use is refused, naming the owner") {
  Fixture f;
  f.folder.write("workloads.yaml", kWorkloads);
  f.start();
  const fs::path evil = f.folder.path / "0-evil.yaml";
  f.change([&] {
    f.folder.write("0-evil.yaml",
                   "apiVersion: v1\nkind: Service\nmetadata: {name: evil, namespace: demo}\n"
                   "spec: {clusterIP: 10.96.0.10, selector: {app: client}, ports: [{port: 80}]}\n");
  });
  REQUIRE(waitUntil([&] { return f.store.stats().rejected.load() >= 1; }));
  CHECK(rejectedFrom(f.store, evil, "10.96.0.10 is already taken by Service demo/web"));
  CHECK(f.store.count(k8s::Kind::kService) == 1);
  const auto n2 = f.store.snapshotFor("node2");
  REQUIRE(n2.services.size() == 1);
  CHECK(n2.services[0].key.name == "web");
  REQUIRE(n2.endpoints.size() == 1);
  REQUIRE(n2.endpoints[0].endpoints.size() == 1);
  CHECK(n2.endpoints[0].endpoints[0].ip == "10.244.1.10");
}

TEST_CASE("standalone: an alias bomb refuses its file as a whole, what it held stays in force") {
  Fixture f;
  f.folder.write("workloads.yaml", kWorkloads);
  f.folder.write("policies.yaml", policy("guard", "web", "DENY"));
  f.start();
  const fs::path file = f.folder.path / "policies.yaml";
  f.change([&] {
    f.folder.write("policies.yaml",
                   policy("guard", "web", "ALLOW") + "---\n" + k8s::testing::listBomb());
  });
  REQUIRE(waitUntil([&] { return f.store.stats().rejected.load() >= 1; }));
  CHECK(rejectedFrom(f.store, file, "more than 250000 YAML nodes"));
  auto guard = policyNamed(f.store.snapshotFor("node1"), "guard");
  REQUIRE(guard.has_value());
  CHECK(guard->action == model::PolicyAction::kDeny);
  CHECK(f.store.count(k8s::Kind::kNamespace) == 1);  // nothing of the bomb got in
  // Fixing the file applies it.
  f.change([&] { f.folder.write("policies.yaml", policy("guard", "web", "ALLOW")); });
  CHECK(waitUntil([&] {
    auto p = policyNamed(f.store.snapshotFor("node1"), "guard");
    return p.has_value() && p->action == model::PolicyAction::kAllow;
  }));
}

TEST_CASE("standalone: a missing folder is a clear start-up error") {
  StateStore store;
  StandaloneSource source("/nonexistent/ferry-manifests", store);
  auto s = source.start();
  CHECK(s.code() == absl::StatusCode::kNotFound);
  CHECK(std::string(s.message()).find("/nonexistent/ferry-manifests") != std::string::npos);
}

TEST_CASE("standalone: the repository's demo manifests in policies/ load without refusals") {
  StateStore store{standaloneOptions()};
  StandaloneSource source(fs::path(FERRY_SOURCE_DIR) / "policies", store);
  REQUIRE(source.start().ok());
  CHECK(store.stats().rejected.load() == 0);
  CHECK(store.count(k8s::Kind::kPod) >= 2);
  CHECK(store.count(k8s::Kind::kAuthorizationPolicy) >= 1);
  bool any_policy = false;
  for (const auto& node : {"node1", "node2"}) {
    auto s = store.snapshotFor(node);
    CHECK_FALSE(s.workloads.empty());
    CHECK_FALSE(s.services.empty());
    any_policy = any_policy || !s.policies.empty();
  }
  CHECK(any_policy);
  source.stop();
}

}  // namespace
}  // namespace ferry::controller
