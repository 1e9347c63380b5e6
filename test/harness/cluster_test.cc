// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "harness/cluster.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "eventually.h"
#include "privileged.h"
#include "status_testing.h"

namespace ferry::harness {
namespace {

namespace fs = std::filesystem;

// Everything findLeftovers() sees that belongs to cluster `id`.
std::vector<std::string> leftoversOf(const std::string& id) {
  auto found = findLeftovers(/*stale_only=*/false);
  REQUIRE_OK(found);
  std::vector<std::string> mine;
  for (const auto* list :
       {&found->netns, &found->links, &found->cgroups, &found->pins, &found->state_files}) {
    for (const std::string& item : *list) {
      if (absl::StrContains(item, id)) {
        mine.push_back(item);
      }
    }
  }
  return mine;
}

// Alive and not a zombie waiting for a parent that is gone.
bool processAlive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_field, comm, state;
  if (!(stat >> pid_field >> comm >> state)) {
    return false;
  }
  return state != "Z" && state != "X";
}

// Polls `cmd` in `pod` until it exits 0 (a server coming up), at most 5 s; the last result, which
// the caller checks.
ProcessResult retryUntilOk(const Cluster& cluster, const Pod& pod,
                           const std::vector<std::string>& cmd) {
  ProcessResult last;
  static_cast<void>(ferry::testing::eventually(
      [&] {
        auto r = cluster.run(pod, cmd, absl::Seconds(10));
        REQUIRE_OK(r);
        last = *r;
        return last.exit_code == 0;
      },
      std::chrono::seconds(5), "`" + absl::StrJoin(cmd, " ") + "` to exit 0",
      std::chrono::milliseconds(100)));
  return last;
}

TEST_CASE("a client on node 2 reaches a server on node 1 in the clear", "[harness][privileged]") {
  FERRY_REQUIRE_ROOT();
  std::string id;
  {
    auto created = Cluster::create({.nodes = 2, .pods_per_node = 2});
    REQUIRE_OK(created);
    Cluster& cluster = **created;
    id = cluster.id();
    REQUIRE(cluster.nodes().size() == 2);
    const Pod& server = cluster.pod(1, 1);
    const Pod& client = cluster.pod(2, 1);
    CHECK(server.ipv4 == "10.244.1.11");
    CHECK(client.ipv6 == "fd00:244::2:11");

    std::string docroot = cluster.scratchDir() + "/www";
    fs::create_directories(docroot);
    std::ofstream(docroot + "/hello.txt") << "hello from n1p1\n";
    auto http = cluster.spawn(
        server, {"python3", "-m", "http.server", "8080", "--bind", "::", "--directory", docroot});
    REQUIRE_OK(http);

    ProcessResult v4 = retryUntilOk(
        cluster, client, {"curl", "-sS", "--max-time", "5", "http://10.244.1.11:8080/hello.txt"});
    INFO(v4.err << (*http)->log());
    CHECK(v4.exit_code == 0);
    CHECK(v4.out == "hello from n1p1\n");

    auto v6 = cluster.run(
        client, {"curl", "-sS", "--max-time", "5", "-g", "http://[fd00:244::1:11]:8080/hello.txt"});
    REQUIRE_OK(v6);
    CHECK(v6->out == "hello from n1p1\n");

    // Nothing routes out: no default route, and an uncaptured service VIP fails at once.
    auto routes = cluster.run(client, {"ip", "route", "show", "default"});
    REQUIRE_OK(routes);
    CHECK(routes->out.empty());
    auto vip = cluster.run(client, {"curl", "-sS", "--max-time", "3", "http://10.96.0.10/"});
    REQUIRE_OK(vip);
    CHECK(vip->exit_code == 7);  // curl: could not connect
    auto vip_route = cluster.run(client, {"ip", "route", "get", "10.96.0.10"});
    REQUIRE_OK(vip_route);
    CHECK(vip_route->exit_code != 0);
    CHECK(absl::StrContains(vip_route->err, "unreachable"));

    // Processes in a pod really are in its cgroup.
    auto cg = cluster.run(client, {"cat", "/proc/self/cgroup"});
    REQUIRE_OK(cg);
    CHECK(absl::StrContains(cg->out, absl::StrCat("ferry-", id, "/node2/pod1")));
    CHECK(!leftoversOf(id).empty());
  }
  // The cluster went away with its owner object: nothing with its id is left.
  CHECK(leftoversOf(id).empty());
}

TEST_CASE("cleanup removes what a killed test left, and spares live clusters",
          "[harness][privileged]") {
  FERRY_REQUIRE_ROOT();
  auto live = Cluster::create({.nodes = 1, .pods_per_node = 1});
  REQUIRE_OK(live);

  int pipefd[2];
  REQUIRE(::pipe(pipefd) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Stands in for a test that is killed midway: it builds a cluster, starts a process in a
    // pod, and never tears down.
    ::close(pipefd[0]);
    auto doomed = Cluster::create({.nodes = 2, .pods_per_node = 1});
    if (!doomed.ok()) {
      _exit(1);
    }
    auto sleeper = (*doomed)->spawn((*doomed)->pod(2, 1), {"sleep", "600"});
    std::string msg = (*doomed)->id() + " " + std::to_string(sleeper.ok() ? (*sleeper)->pid() : 0);
    (void)!::write(pipefd[1], msg.data(), msg.size());
    ::close(pipefd[1]);
    ::pause();
    _exit(0);
  }
  ::close(pipefd[1]);
  char buf[64] = {};
  ssize_t n = ::read(pipefd[0], buf, sizeof(buf) - 1);
  ::close(pipefd[0]);
  REQUIRE(n > 0);
  std::string id(buf, 4);
  pid_t sleeper = std::stoi(std::string(buf + 5));
  REQUIRE(sleeper > 0);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);

  auto stale = findLeftovers(/*stale_only=*/true);
  REQUIRE_OK(stale);
  INFO(stale->describe());
  CHECK(!leftoversOf(id).empty());
  CHECK(absl::StrContains(stale->describe(), id));
  CHECK(!absl::StrContains(stale->describe(), (*live)->id()));

  auto removed = cleanupLeftovers(/*stale_only=*/true);
  REQUIRE_OK(removed);
  CHECK(leftoversOf(id).empty());
  CHECK(!processAlive(sleeper));  // the pod's process died with its cgroup
  // The live cluster is untouched and still works.
  auto ok = (*live)->run((*live)->pod(1, 1), {"ip", "-o", "addr", "show", "eth0"});
  REQUIRE_OK(ok);
  CHECK(absl::StrContains(ok->out, "10.244.1.11"));
}

TEST_CASE("a cluster made by the CLI is never stale until down", "[harness][privileged]") {
  FERRY_REQUIRE_ROOT();
  auto cli = [](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {FERRY_CLUSTER_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = runProcess({}, argv, absl::Seconds(120));
    REQUIRE_OK(r);
    INFO(absl::StrJoin(argv, " ") << "\nstdout: " << r->out << "\nstderr: " << r->err);
    return *r;
  };
  ProcessResult up = cli({"up", "--nodes", "1", "--pods", "1"});
  REQUIRE(up.exit_code == 0);
  REQUIRE(absl::StartsWith(up.out, "cluster "));
  const std::string id = up.out.substr(8, 4);
  REQUIRE(leftoversOf(id).size() >= 4);  // netns, links, cgroups, pins, state file
  const size_t made = leftoversOf(id).size();

  // The `up` process is gone: its cluster must not count as stale.
  ProcessResult stale = cli({"leftovers", "--stale"});
  CHECK_FALSE(absl::StrContains(stale.out, id));
  ProcessResult cleanup = cli({"cleanup", "--stale"});
  CHECK(cleanup.exit_code == 0);
  CHECK_FALSE(absl::StrContains(cleanup.out, id));
  CHECK(leftoversOf(id).size() == made);
  ProcessResult exec = cli({"exec", id, "n1p1", "--", "ip", "-o", "addr", "show", "eth0"});
  CHECK(exec.exit_code == 0);
  CHECK(absl::StrContains(exec.out, "10.244.1.11"));

  ProcessResult down = cli({"down", id});
  CHECK(down.exit_code == 0);
  CHECK(leftoversOf(id).empty());
}

TEST_CASE("bad cluster specs are refused with a reason", "[harness]") {
  auto zero = Cluster::create({.nodes = 0});
  CHECK(zero.status().code() == absl::StatusCode::kInvalidArgument);
  auto badid = Cluster::create({.nodes = 1, .pods_per_node = 1, .id = "XYZ!"});
  CHECK(badid.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(absl::StrContains(badid.status().message(), "4 lowercase hex"));
  CHECK(Cluster::open("ffff").status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("runProcess reports exit codes, output, input and timeouts", "[harness]") {
  auto echo = runProcess({}, {"sh", "-c", "cat; echo err >&2; exit 3"}, absl::Seconds(10), "in");
  REQUIRE(echo.ok());
  CHECK(echo->exit_code == 3);
  CHECK(echo->out == "in");
  CHECK(echo->err == "err\n");
  auto slow = runProcess({}, {"sleep", "5"}, absl::Milliseconds(200));
  CHECK(slow.status().code() == absl::StatusCode::kDeadlineExceeded);
  auto missing = runProcess({}, {"/nonexistent/ferry-binary"}, absl::Seconds(5));
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ferry::harness
