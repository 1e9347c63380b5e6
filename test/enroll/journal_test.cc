// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "enroll/journal.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

namespace ferry::enroll {
namespace {

std::string tempDir() {
  char tmpl[] = "/tmp/ferry-journal-XXXXXX";
  return ::mkdtemp(tmpl);
}

TEST_CASE("journal saves and loads pods and a missing file is empty", "[enroll]") {
  std::string dir = tempDir();
  Journal journal(dir + "/node1/pods.json");
  auto empty = journal.load();
  REQUIRE(empty.ok());
  CHECK(empty->empty());
  std::vector<PodInfo> pods = {
      {"u1", "n1p1", "default", "sa1", "/run/netns/a", {"10.244.1.11"}},
      {"u2", "n1p2", "other", "", "/run/netns/b", {}},
  };
  REQUIRE(journal.save(pods).ok());
  auto loaded = journal.load();
  REQUIRE(loaded.ok());
  CHECK(*loaded == pods);
  CHECK_FALSE(std::filesystem::exists(journal.path() + ".tmp"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("a corrupt journal is an error naming the file and entry", "[enroll]") {
  std::string dir = tempDir();
  Journal journal(dir + "/pods.json");
  struct Row {
    const char* text;
    const char* reason;
  };
  for (const Row& row : {
           Row{"not json", "not a JSON object"},
           Row{R"({"version":2,"pods":[]})", "unsupported journal version"},
           Row{R"({"version":1})", "\"pods\" must be an array"},
           Row{R"({"version":1,"pods":[{"uid":"u"}]})", "pods[0]: pod: missing field \"name\""},
       }) {
    std::ofstream(journal.path()) << row.text;
    auto loaded = journal.load();
    REQUIRE_FALSE(loaded.ok());
    CHECK_THAT(std::string(loaded.status().message()), Catch::Contains(row.reason));
    CHECK_THAT(std::string(loaded.status().message()), Catch::Contains(journal.path()));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("replay drops pods whose netns vanished", "[enroll]") {
  std::string dir = tempDir();
  std::ofstream(dir + "/alive");
  std::vector<PodInfo> pods = {
      {"u1", "alive", "ns", "", dir + "/alive", {}},
      {"u2", "dead", "ns", "", dir + "/dead", {}},
  };
  Replay r = replay(pods, netnsExists);
  REQUIRE(r.kept.size() == 1);
  CHECK(r.kept[0].uid == "u1");
  REQUIRE(r.dropped.size() == 1);
  CHECK(r.dropped[0].uid == "u2");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ferry::enroll
