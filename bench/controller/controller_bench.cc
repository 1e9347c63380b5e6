// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Controller scale benchmark: 10,000 pods on 100 nodes, 2,000 services (one EndpointSlice each),
// 1,000 AuthorizationPolicies on the fake API server, which runs in a child process so the
// controller's memory is measured alone. Reports the initial sync time, the controller's RSS,
// and p50/p99 of the time from a policy update (PUT to the API server) to its appearance in
// the node view of the node running the selected pod. Then it serves that store to a real
// agent client (controlplane::ControlPlaneClient over mTLS, as ferry-agent uses it) and reports
// the time from a policy update to the agent holding it.
//
//   ferry-controller-bench [--pods N] [--services N] [--policies N] [--updates N]
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "controller/agent_server.h"
#include "controller/kube_source.h"
#include "controller/store.h"
#include "controlplane/client.h"
#include "fakes/kube_api_server/fake_api_server.h"
#include "fakes/kube_api_server/objects.h"
#include "process/process.h"
#include "tls/x509.h"

namespace ferry::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace ferry::testing;  // NOLINT: the object builders

struct Scale {
  int pods = 10000;
  int services = 2000;
  int policies = 1000;
  int nodes = 100;
  int namespaces = 50;
  int updates = 200;
};

std::string nsOf(int app, const Scale& s) {
  return "bench-" + std::to_string(app % s.namespaces);
}
std::string ipOf(int pod) {
  return absl::StrCat("10.244.", pod / 250, ".", pod % 250 + 1);
}
int podsPerApp(const Scale& s) {
  return std::max(1, s.pods / s.services);
}
std::string nodeOfPod(int pod, const Scale& s) {
  return "node" + std::to_string(pod % s.nodes);
}
// Policy p selects app 2p (two policies never share an app) in the app's namespace.
int appOfPolicy(int p, const Scale& s) {
  return (2 * p) % s.services;
}

nlohmann::json policyJson(int p, const Scale& s, const std::string& marker) {
  const int app = appOfPolicy(p, s);
  return authorizationPolicyJson(nsOf(app, s), "policy-" + std::to_string(p),
                                 {{"app", "app-" + std::to_string(app)}}, "ALLOW",
                                 "cluster.local/ns/bench/sa/" + marker);
}

void populate(fakes::FakeApiServer& server, const Scale& s) {
  auto must = [](const absl::StatusOr<nlohmann::json>& r) {
    if (!r.ok()) {
      std::cerr << "populate: " << r.status().message() << "\n";
      std::exit(1);
    }
  };
  for (int n = 0; n < s.namespaces; ++n) {
    must(server.create(meshNamespaceJson("bench-" + std::to_string(n))));
  }
  const int per_app = podsPerApp(s);
  for (int i = 0; i < s.pods; ++i) {
    const int app = (i / per_app) % s.services;
    auto pod = podJson(nsOf(app, s), "pod-" + std::to_string(i), nodeOfPod(i, s), ipOf(i),
                       {{"app", "app-" + std::to_string(app)}});
    pod["metadata"]["uid"] = "uid-" + std::to_string(i);
    must(server.create(pod));
  }
  for (int k = 0; k < s.services; ++k) {
    must(server.create(serviceJson(nsOf(k, s), "svc-" + std::to_string(k),
                                   absl::StrCat("10.96.", k / 250, ".", k % 250 + 1),
                                   {{"app", "app-" + std::to_string(k)}})));
    std::vector<SliceEndpoint> eps;
    for (int i = k * per_app; i < (k + 1) * per_app && i < s.pods; ++i) {
      eps.push_back(
          {ipOf(i), nodeOfPod(i, s), "pod-" + std::to_string(i), "uid-" + std::to_string(i)});
    }
    must(server.create(endpointSliceJson(nsOf(k, s), "svc-" + std::to_string(k) + "-1",
                                         "svc-" + std::to_string(k), eps)));
  }
  for (int p = 0; p < s.policies; ++p) {
    must(server.create(policyJson(p, s, "initial")));
  }
}

// The fake API server lives in a child so the parent's RSS is the controller's alone.
// Returns the port; the child exits when the parent closes the pipe.
int startServerProcess(const Scale& s, pid_t* child) {
  int to_parent[2], to_child[2];
  if (pipe(to_parent) != 0 || pipe(to_child) != 0) {
    std::perror("pipe");
    std::exit(1);
  }
  *child = fork();
  if (*child == 0) {
    close(to_parent[0]);
    close(to_child[1]);
    auto server = fakes::FakeApiServer::start();
    if (!server.ok()) {
      std::cerr << server.status().message() << "\n";
      _exit(1);
    }
    populate(**server, s);
    const int port = (*server)->port();
    [[maybe_unused]] auto n = write(to_parent[1], &port, sizeof(port));
    char c;
    while (read(to_child[0], &c, 1) > 0) {
    }
    _exit(0);
  }
  close(to_parent[1]);
  close(to_child[0]);
  int port = 0;
  if (read(to_parent[0], &port, sizeof(port)) != sizeof(port)) {
    std::cerr << "the fake API server process failed\n";
    std::exit(1);
  }
  return port;  // to_child[1] stays open until we exit
}

long statusKb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) {
      return std::atol(line.c_str() + std::strlen(field) + 1);
    }
  }
  return -1;
}

// CPU time (user + system) of this process so far, in milliseconds.
double cpuMs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto ms = [](const timeval& t) { return t.tv_sec * 1000.0 + t.tv_usec / 1000.0; };
  return ms(u.ru_utime) + ms(u.ru_stime);
}

// CPU time (user + system) of process `pid` so far, in milliseconds (/proc/<pid>/stat).
double cpuMsOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command (which may hold spaces) start past the last ')'.
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  unsigned long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) {
      utime = std::stoul(field);
    } else if (i == 15) {
      stime = std::stoul(field);
    }
  }
  return static_cast<double>(utime + stime) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// Arms the probe (`arm` runs under `mu` and sets what to look for), PUTs policy `p` with
// `marker`, and waits until the probe saw it: the milliseconds in between.
absl::StatusOr<double> timeUpdate(kube::Client& client, const Scale& s, int p,
                                  const std::string& marker, std::mutex& mu,
                                  std::condition_variable& cv, bool& seen,
                                  const Clock::time_point& seen_at,
                                  const std::function<void()>& arm) {
  {
    std::lock_guard<std::mutex> lock(mu);
    arm();
    seen = false;
  }
  const auto t0 = Clock::now();
  auto r = client.update(kube::kAuthorizationPolicies, policyJson(p, s, marker));
  if (!r.ok()) {
    return r.status();
  }
  std::unique_lock<std::mutex> lock(mu);
  if (!cv.wait_for(lock, std::chrono::seconds(30), [&] { return seen; })) {
    return absl::DeadlineExceededError(marker + " was never seen");
  }
  return std::chrono::duration<double, std::milli>(seen_at - t0).count();
}

struct AgentFigures {
  double first_snapshot_ms = 0;
  size_t first_snapshot_items = 0;
  std::vector<double> latencies;
  long rss_kb = 0;
};

// The store served as ferry-controller serves it, to one agent client on the node that runs
// the pod of policy 0; updates go to policies selecting pods of that node.
absl::StatusOr<AgentFigures> measureAgent(const Scale& s, controller::StateStore& store,
                                          kube::Client& client) {
  AgentFigures out;
  const auto nodeOfPolicy = [&](int p) { return nodeOfPod(appOfPolicy(p, s) * podsPerApp(s), s); };
  const std::string node = nodeOfPolicy(0);
  std::vector<int> mine;
  for (int p = 0; p < s.policies; ++p) {
    if (nodeOfPolicy(p) == node) {
      mine.push_back(p);
    }
  }
  char tmpl[] = "/tmp/ferry-controller-bench-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  static constexpr char kToken[] = "bench-bootstrap-token-0123456789";
  std::ofstream(dir + "/tokens") << kToken << "\n";
  controller::ControllerConfig config;
  config.listen = "127.0.0.1:0";
  config.ca_dir = dir + "/ca";
  config.bootstrap_token_file = dir + "/tokens";
  config.trust_bundle_file = dir + "/bundle.pem";
  auto server = controller::AgentServer::start(config, store, nullptr);
  if (!server.ok()) {
    return server.status();
  }
  controlplane::ClientConfig agent;
  agent.address = "127.0.0.1:" + std::to_string((*server)->port());
  agent.node = node;
  agent.ca_bundle_pem = *tls::readPemFile(config.trust_bundle_file);
  agent.bootstrap_token = []() -> absl::StatusOr<std::string> { return std::string(kToken); };

  std::mutex mu;
  std::condition_variable cv;
  std::string want_name, want_principal;
  bool first = false, seen = true;
  Clock::time_point seen_at;
  const auto connect_start = Clock::now();
  auto cp = controlplane::ControlPlaneClient::start(agent, [&](const model::NodeSnapshot& snap) {
    std::lock_guard<std::mutex> lock(mu);
    if (!first) {
      first = true;
      out.first_snapshot_ms =
          std::chrono::duration<double, std::milli>(Clock::now() - connect_start).count();
      out.first_snapshot_items = snap.workloads.size() + snap.services.size() +
                                 snap.endpoints.size() + snap.policies.size();
      cv.notify_all();
    }
    if (seen) {
      return;
    }
    for (const auto& p : snap.policies) {
      if (p.key.name == want_name && !p.rules.empty() && !p.rules[0].from.empty() &&
          !p.rules[0].from[0].principals.empty() &&
          p.rules[0].from[0].principals[0] == want_principal) {
        seen = true;
        seen_at = Clock::now();
        cv.notify_all();
        return;
      }
    }
  });
  if (!cp.ok()) {
    return cp.status();
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(60), [&] { return first; })) {
      return absl::DeadlineExceededError("agent: no first snapshot: " + (*cp)->lastError());
    }
  }
  out.rss_kb = statusKb("VmRSS:");
  for (int i = 0; i < s.updates; ++i) {
    const int p = mine[static_cast<size_t>(i) % mine.size()];
    const std::string marker = "agent-update-" + std::to_string(i);
    auto ms = timeUpdate(client, s, p, marker, mu, cv, seen, seen_at, [&] {
      want_name = "policy-" + std::to_string(p);
      want_principal = "cluster.local/ns/bench/sa/" + marker;
    });
    if (!ms.ok()) {
      return ms.status();
    }
    out.latencies.push_back(*ms);
  }
  cp->reset();
  server->reset();
  std::filesystem::remove_all(dir);
  return out;
}

int run(const Scale& s) {
  pid_t child = 0;
  const auto populate_start = Clock::now();
  const int port = startServerProcess(s, &child);
  const double populate_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - populate_start).count();
  const long rss_before_kb = statusKb("VmRSS:");

  kube::KubeConfig cfg;
  cfg.server = "http://127.0.0.1:" + std::to_string(port);
  kube::Client client(cfg);
  controller::StateStore store;
  controller::KubeSource source(client, store);

  // Probe: the policy and marker we wait for, checked on every store change.
  std::mutex mu;
  std::condition_variable cv;
  std::string want_node, want_ns, want_name, want_principal;
  uint64_t want_since = 0;
  bool seen = true;
  Clock::time_point seen_at;
  store.subscribe([&](uint64_t) {
    std::string node, ns, name, principal;
    uint64_t since;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (seen) {
        return;
      }
      node = want_node, ns = want_ns, name = want_name, principal = want_principal;
      since = want_since;
    }
    // What the distribution server does for each watching agent: the node view's changes.
    const auto changes = store.changesSince(node, since);
    const auto snap = changes.rebuild ? store.snapshotFor(node) : changes.upserts;
    for (const auto& p : snap.policies) {
      if (p.key.ns == ns && p.key.name == name && !p.rules.empty() && !p.rules[0].from.empty() &&
          !p.rules[0].from[0].principals.empty() && p.rules[0].from[0].principals[0] == principal) {
        std::lock_guard<std::mutex> lock(mu);
        seen = true;
        seen_at = Clock::now();
        cv.notify_all();
        return;
      }
    }
  });

  const double sync_cpu_start = cpuMs();
  const double server_cpu_start = cpuMsOf(child);
  const auto sync_start = Clock::now();
  if (!source.start().ok() || !source.waitForSync(std::chrono::minutes(5))) {
    std::cerr << "initial sync did not finish\n";
    return 1;
  }
  const double sync_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - sync_start).count();
  const double sync_cpu_ms = cpuMs() - sync_cpu_start;
  const double server_cpu_ms = cpuMsOf(child) - server_cpu_start;
  const long rss_kb = statusKb("VmRSS:");
  const long hwm_kb = statusKb("VmHWM:");

  // Cost of building one node's view at this scale (what a push to one agent costs).
  const auto snap_start = Clock::now();
  size_t snap_items = 0;
  for (int n = 0; n < s.nodes; ++n) {
    auto snap = store.snapshotFor("node" + std::to_string(n));
    snap_items += snap.workloads.size() + snap.services.size() + snap.policies.size();
  }
  const double snap_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - snap_start).count() / s.nodes;

  std::vector<double> latencies;
  for (int i = 0; i < s.updates; ++i) {
    const int p = (i * 7) % s.policies;
    const int app = appOfPolicy(p, s);
    const std::string marker = "update-" + std::to_string(i);
    auto ms = timeUpdate(client, s, p, marker, mu, cv, seen, seen_at, [&] {
      want_node = nodeOfPod(app * podsPerApp(s), s);
      want_since = store.version();
      want_ns = nsOf(app, s);
      want_name = "policy-" + std::to_string(p);
      want_principal = "cluster.local/ns/bench/sa/" + marker;
    });
    if (!ms.ok()) {
      std::cerr << "update: " << ms.status().message() << "\n";
      return 1;
    }
    latencies.push_back(*ms);
  }
  auto agent = measureAgent(s, store, client);
  if (!agent.ok()) {
    std::cerr << agent.status() << "\n";
    return 1;
  }
  source.stop();

  std::printf("controller scale benchmark (fake API server in a child process)\n");
  std::printf(
      "  objects: %d pods on %d nodes, %d services + %d EndpointSlices, %d policies, "
      "%d namespaces\n",
      s.pods, s.nodes, s.services, s.services, s.policies, s.namespaces);
  std::printf("  fake server populated in           %8.0f ms\n", populate_ms);
  std::printf(
      "  initial sync (list all kinds)      %8.0f ms (CPU: controller %.0f ms, fake API server "
      "%.0f ms)\n",
      sync_ms, sync_cpu_ms, server_cpu_ms);
  std::printf(
      "  controller RSS after sync          %8.1f MiB (peak %.1f MiB, %.1f MiB before "
      "start)\n",
      rss_kb / 1024.0, hwm_kb / 1024.0, rss_before_kb / 1024.0);
  std::printf("  one node view (snapshotFor)        %8.2f ms avg, %zu items avg\n", snap_ms,
              snap_items / static_cast<size_t>(s.nodes));
  std::printf(
      "  policy update -> node view changes, n=%zu  p50 %.2f ms  p99 %.2f ms  max %.2f ms\n",
      latencies.size(), percentile(latencies, 0.5), percentile(latencies, 0.99),
      percentile(latencies, 1.0));
  std::printf("  agent connect -> first snapshot    %8.0f ms, %zu items (%s)\n",
              agent->first_snapshot_ms, agent->first_snapshot_items,
              "workloads+services+"
              "endpoints+policies");
  std::printf("  RSS with the agent server + client %8.1f MiB\n", agent->rss_kb / 1024.0);
  std::printf("  policy update -> agent client, n=%zu p50 %.2f ms  p99 %.2f ms  max %.2f ms\n",
              agent->latencies.size(), percentile(agent->latencies, 0.5),
              percentile(agent->latencies, 0.99), percentile(agent->latencies, 1.0));
  std::printf("  refused objects                    %8lu\n",
              static_cast<unsigned long>(store.stats().rejected.load()));
  kill(child, SIGTERM);
  waitpid(child, nullptr, 0);
  return 0;
}

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) {
  ferry::bench::Scale s;
  if (argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::cout << "usage: ferry-controller-bench [--pods N] [--services N] [--policies N] "
                 "[--updates N] [--nodes N] [--deadlock-detector 1]\n"
                 "Controller sync time, RSS and policy propagation latency at scale.\n"
                 "--deadlock-detector 1: keep Abseil's mutex deadlock detector on (the\n"
                 "baseline); by default the process is configured as ferry-controller's.\n";
    return 0;
  }
  bool deadlock_detector = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    int v = 0;
    if (!absl::SimpleAtoi(argv[i + 1], &v) || v <= 0) {
      std::cerr << flag << ": expected a positive number\n";
      return 2;
    }
    if (flag == "--pods") {
      s.pods = v;
    } else if (flag == "--services") {
      s.services = v;
    } else if (flag == "--policies") {
      s.policies = v;
    } else if (flag == "--updates") {
      s.updates = v;
    } else if (flag == "--nodes") {
      s.nodes = v;
    } else if (flag == "--deadlock-detector") {
      deadlock_detector = true;
    } else {
      std::cerr << "unknown flag " << flag << "\n";
      return 2;
    }
  }
  if (!deadlock_detector) {
    ferry::process::configure();
  }
  return ferry::bench::run(s);
}
