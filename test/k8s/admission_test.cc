// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Manifests that would take over what is in force (issue 16): a duplicate object, a taken
// ClusterIP or pod IP, a file refused as a whole. Each row loads a folder, then adds newer files
// and loads it again with what the first load put in force; the newcomer is refused with an
// error naming its own file, and the object in force stays.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "k8s/loader.h"
#include "k8s/manifest_bombs.h"

namespace ferry::k8s {
namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

struct File {
  std::string name;
  std::string text;
};

struct AdmissionRow {
  const char* description;
  std::vector<File> in_force;  // loaded first
  std::vector<File> then;      // written next (newer, oldest first), then the folder reloads
  const char* refused;         // the error's source starts with this (the newcomer's file)
  const char* reason;          // and its message contains this
  ObjectRef stays;             // in force after the reload...
  const char* stays_from;      // ...read from this file; nullptr: kept from a refused file
  size_t errors = 1;
};

std::string policy(const std::string& name, const std::string& action) {
  return "apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n"
         "metadata: {name: " +
         name + ", namespace: demo}\nspec:\n  action: " + action +
         "\n  rules: [{to: [{operation: {paths: [/admin]}}]}]\n";
}

std::string service(const std::string& name, const std::string& ip) {
  return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name +
         ", namespace: demo}\nspec: {clusterIP: \"" + ip + "\", ports: [{port: 80}]}\n";
}

std::string pod(const std::string& name, const std::string& ip) {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + ", namespace: demo, uid: " + name +
         "}\nspec: {nodeName: node1}\nstatus: {podIP: \"" + ip + "\"}\n";
}

const ObjectRef kDeny{Kind::kAuthorizationPolicy, {"demo", "deny-admin"}};
const ObjectRef kWeb{Kind::kService, {"demo", "web"}};
const ObjectRef kWebPod{Kind::kPod, {"demo", "web"}};

struct Folder {
  fs::path path;
  fs::file_time_type next = fs::file_time_type::clock::now() - std::chrono::hours(1);
  Folder() {
    char tmpl[] = "/tmp/ferry-admission-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~Folder() { fs::remove_all(path); }
  // Each file written is one second newer than the one before.
  void write(const File& f) {
    std::ofstream(path / f.name) << f.text;
    fs::last_write_time(path / f.name, next += std::chrono::seconds(1));
  }
};

TEST_CASE("a newcomer never replaces what is in force: duplicates, taken addresses",
          "[k8s][malformed]") {
  const std::string deny = policy("deny-admin", "DENY");
  const std::string allow = policy("deny-admin", "ALLOW");
  const std::vector<AdmissionRow> rows = {
      {"duplicate policy in a file sorting before the original",
       {{"z-original.yaml", deny}},
       {{"a-newcomer.yaml", allow}},
       "a-newcomer.yaml, document 1",
       "AuthorizationPolicy demo/deny-admin: duplicates the object from",
       kDeny,
       "z-original.yaml"},
      {"duplicate policy in a file sorting after the original",
       {{"a-original.yaml", deny}},
       {{"z-newcomer.yaml", allow}},
       "z-newcomer.yaml, document 1",
       "duplicates the object from",
       kDeny,
       "a-original.yaml"},
      {"duplicate in an older file while the one in force was just edited (loads first)",
       {{"z-original.yaml", deny}},
       {{"a-newcomer.yaml", allow}, {"z-original.yaml", deny + "---\n" + policy("other", "DENY")}},
       "a-newcomer.yaml, document 1",
       "duplicates the object in force from",
       kDeny,
       "z-original.yaml"},
      {"duplicate on a fresh start: the older file wins though it sorts last",
       {},
       {{"z-older.yaml", deny}, {"a-newer.yaml", allow}},
       "a-newer.yaml, document 1",
       "duplicates the object from",
       kDeny,
       "z-older.yaml"},
      {"taken ClusterIP",
       {{"z-web.yaml", service("web", "10.96.0.10")}},
       {{"a-evil.yaml", service("evil", "10.96.0.10")}},
       "a-evil.yaml, document 1",
       "Service demo/evil: spec.clusterIPs: 10.96.0.10 is already taken by Service demo/web",
       kWeb,
       "z-web.yaml"},
      {"taken ClusterIP, the holder's file edited after the newcomer appeared",
       {{"z-web.yaml", service("web", "10.96.0.10")}},
       {{"a-evil.yaml", service("evil", "10.96.0.10")},
        {"z-web.yaml", service("web", "10.96.0.10") + "---\n" + service("db", "10.96.0.11")}},
       "a-evil.yaml, document 1",
       "Service demo/evil: spec.clusterIPs: 10.96.0.10 is held by Service demo/web (in force",
       kWeb,
       "z-web.yaml"},
      {"taken ClusterIP on a fresh start: the older file keeps it",
       {},
       {{"z-web.yaml", service("web", "10.96.0.10")},
        {"a-evil.yaml", service("evil", "10.96.0.10")}},
       "a-evil.yaml, document 1",
       "is already taken by Service demo/web",
       kWeb,
       "z-web.yaml"},
      {"the same IPv6 ClusterIP written another way",
       {{"z-web.yaml", service("web", "fd00:96::a")}},
       {{"a-evil.yaml", service("evil", "fd00:96:0:0::0:a")}},
       "a-evil.yaml, document 1",
       "spec.clusterIPs: fd00:96:0:0::0:a is already taken by Service demo/web",
       kWeb,
       "z-web.yaml"},
      {"taken pod IP",
       {{"z-web.yaml", pod("web", "10.244.1.10")}},
       {{"a-evil.yaml", pod("evil", "10.244.1.10")}},
       "a-evil.yaml, document 1",
       "Pod demo/evil: status.podIPs: 10.244.1.10 is already taken by Pod demo/web",
       kWebPod,
       "z-web.yaml"},
      {"taken pod uid (endpoints name their pod by uid)",
       {{"z-web.yaml", pod("web", "10.244.1.10")}},
       {{"a-evil.yaml",
         "apiVersion: v1\nkind: Pod\nmetadata: {name: evil, namespace: demo, uid: web}\n"
         "spec: {nodeName: node1}\nstatus: {podIP: 10.244.1.66}\n"}},
       "a-evil.yaml, document 1",
       "Pod demo/evil: metadata.uid: web is already taken by Pod demo/web",
       kWebPod,
       "z-web.yaml"},
      {"a ClusterIP that is a pod's IP",
       {{"z-web.yaml", pod("web", "10.244.1.10")}},
       {{"a-evil.yaml", service("evil", "10.244.1.10")}},
       "a-evil.yaml, document 1",
       "Service demo/evil: spec.clusterIPs: 10.244.1.10 is already taken by Pod demo/web",
       kWebPod,
       "z-web.yaml"},
      {"a bomb written into the file holding a policy in force: the policy stays",
       {{"p.yaml", deny}},
       {{"p.yaml", deny + "---\n" + testing::listBomb()}},
       "p.yaml",
       "p.yaml: more than 250000 YAML nodes",
       kDeny,
       nullptr},
      {"duplicate of a policy kept from a file refused as a whole",
       {{"z.yaml", deny}},
       {{"z.yaml", deny + "---\n" + testing::listBomb()}, {"a.yaml", allow}},
       "a.yaml, document 1",
       "duplicates the object in force from",
       kDeny,
       nullptr,
       2},
  };
  for (const auto& row : rows) {
    SECTION(row.description) {
      Folder folder;
      for (const auto& f : row.in_force) {
        folder.write(f);
      }
      const LoadResult first = loadFolder(folder.path);
      REQUIRE(first.errors.empty());
      for (const auto& f : row.then) {
        folder.write(f);
      }
      const LoadResult r = loadFolder(folder.path, {}, first.inForce({}));
      INFO("errors: " << r.errors.size());
      REQUIRE(r.errors.size() == row.errors);
      const std::string refused = (folder.path / row.refused).string();
      const LoadError* error = nullptr;
      for (const auto& e : r.errors) {
        error = e.source.rfind(refused, 0) == 0 ? &e : error;
      }
      REQUIRE(error != nullptr);
      CHECK_THAT(error->message, Contains(row.reason));
      if (row.stays_from == nullptr) {
        CHECK(r.kept.count(row.stays) == 1);
        CHECK(r.objects.count(row.stays) == 0);
        // The next load still knows where it is in force.
        CHECK(r.inForce(first.inForce({})).files.count(row.stays) == 1);
        continue;
      }
      REQUIRE(r.objects.count(row.stays) == 1);
      CHECK_THAT(r.sources.at(row.stays), StartsWith((folder.path / row.stays_from).string()));
      if (const auto* p =
              std::get_if<model::AuthorizationPolicy>(&r.objects.at(row.stays).object)) {
        CHECK(p->action == model::PolicyAction::kDeny);
      }
      // The newcomer holds nothing: no object of its own, no claim.
      for (const auto& [key, holder] : r.claims.holders()) {
        CHECK(r.sources.at(holder).rfind(refused, 0) != 0);
      }
    }
  }
}

TEST_CASE("a refused edit keeps the address of the version that stays in force",
          "[k8s][malformed]") {
  Folder folder;
  folder.write({"z-web.yaml", service("web", "10.96.0.10")});
  folder.write({"y-db.yaml", service("db", "10.96.0.11")});
  const LoadResult first = loadFolder(folder.path);
  REQUIRE(first.errors.empty());
  // db moves onto web's address: refused, so its last good version (10.96.0.11) stays.
  folder.write({"y-db.yaml", service("db", "10.96.0.10")});
  const InForce in_force = first.inForce({});
  const LoadResult second = loadFolder(folder.path, {}, in_force);
  REQUIRE(second.errors.size() == 1);
  CHECK_THAT(second.errors[0].message, Contains("already taken by Service demo/web"));
  const InForce after = second.inForce(in_force);
  CHECK(after.claims.at("ip 10.96.0.11") == ObjectRef{Kind::kService, {"demo", "db"}});
  // So a third Service cannot take 10.96.0.11 while db's old version is in force.
  folder.write({"a-evil.yaml", service("evil", "10.96.0.11")});
  const LoadResult third = loadFolder(folder.path, {}, after);
  REQUIRE(third.errors.size() == 2);
  CHECK(third.objects.count(ObjectRef{Kind::kService, {"demo", "evil"}}) == 0);
  bool named = false;
  for (const auto& e : third.errors) {
    named = named || (e.source.rfind((folder.path / "a-evil.yaml").string(), 0) == 0 &&
                      e.message.find("held by Service demo/db") != std::string::npos);
  }
  CHECK(named);
}

TEST_CASE("objects that share nothing unique are all admitted", "[k8s][malformed]") {
  Folder folder;
  folder.write({"a.yaml", service("headless-a", "None") + "---\n" + service("headless-b", "None")});
  folder.write({"b.yaml", pod("host-a", "192.168.0.1") + "---\n" + pod("host-b", "192.168.0.2")});
  // hostNetwork pods share their node's address: no claim.
  folder.write({"c.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata: {name: hn1, namespace: demo}\n"
                "spec: {hostNetwork: true}\nstatus: {podIP: 192.168.0.1}\n---\n"
                "apiVersion: v1\nkind: Pod\nmetadata: {name: hn2, namespace: demo}\n"
                "spec: {hostNetwork: true}\nstatus: {podIP: 192.168.0.1}\n"});
  const LoadResult r = loadFolder(folder.path);
  CHECK(r.errors.empty());
  CHECK(r.objects.size() == 6);
}

}  // namespace
}  // namespace ferry::k8s
