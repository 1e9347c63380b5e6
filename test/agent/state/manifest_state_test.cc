// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The agent's own manifest folder mode admits manifests through the same loader as the
// controller: a duplicate never replaces the policy in force, and a file refused as a whole
// (an alias bomb) keeps the last good state.
#include "agent/state/manifest_state.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "k8s/manifest_bombs.h"

namespace ferry::agent {
namespace {

namespace fs = std::filesystem;

std::string policy(const std::string& action) {
  return "apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n"
         "metadata: {name: guard, namespace: demo}\nspec:\n  action: " +
         action + "\n  rules: [{to: [{operation: {paths: [/admin]}}]}]\n";
}

std::optional<model::PolicyAction> guardAction(const model::NodeSnapshot& s) {
  for (const auto& p : s.policies) {
    if (p.key.name == "guard") {
      return p.action;
    }
  }
  return std::nullopt;
}

TEST_CASE("agent manifests: what is in force keeps its place", "[agent]") {
  char tmpl[] = "/tmp/ferry-agent-manifests-XXXXXX";
  const fs::path dir = ::mkdtemp(tmpl);
  const auto now = fs::file_time_type::clock::now();
  std::ofstream(dir / "z-original.yaml") << policy("DENY");
  fs::last_write_time(dir / "z-original.yaml", now - std::chrono::seconds(10));
  ManifestStateSource source(dir.string(), "node1", "cluster.local");
  auto first = source.build();
  REQUIRE(first.ok());
  REQUIRE(guardAction(*first) == model::PolicyAction::kDeny);

  // A duplicate in a file that sorts first, even when it is older, is refused.
  std::ofstream(dir / "a-newcomer.yaml") << policy("ALLOW");
  fs::last_write_time(dir / "a-newcomer.yaml", now - std::chrono::seconds(20));
  auto second = source.build();
  REQUIRE(second.ok());
  CHECK(guardAction(*second) == model::PolicyAction::kDeny);

  // A bomb in the file that holds the policy: the build is refused, the last state stays.
  std::ofstream(dir / "z-original.yaml") << policy("ALLOW") << "---\n" << k8s::testing::listBomb();
  auto third = source.build();
  CHECK(third.status().code() == absl::StatusCode::kFailedPrecondition);

  // Fixed: it applies again.
  std::ofstream(dir / "z-original.yaml")
      << policy("DENY") << "---\n"
      << policy("DENY").replace(policy("DENY").find("guard"), 5, "other");
  auto fourth = source.build();
  REQUIRE(fourth.ok());
  CHECK(guardAction(*fourth) == model::PolicyAction::kDeny);
  CHECK(fourth->policies.size() == 2);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ferry::agent
