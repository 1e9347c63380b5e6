// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// ferry-cni run the way a container runtime runs it: a child process with the CNI_* environment
// and the network configuration on stdin, against a fake agent on a temporary enrollment socket.

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "enroll/server.h"

namespace {

using nlohmann::json;

class FakeAgent : public ferry::enroll::Handler {
 public:
  ferry::enroll::Reply handle(const ferry::enroll::Request& r) override {
    std::lock_guard lock(mu_);
    requests.push_back(r);
    switch (r.op) {
      case ferry::enroll::Op::kAdd:
        pods.insert(r.pod.uid);
        return ferry::enroll::Reply::success();
      case ferry::enroll::Op::kDel:
        if (pods.erase(r.uid) == 0) {
          return ferry::enroll::Reply::failure("unknown pod " + r.uid);
        }
        return ferry::enroll::Reply::success();
      case ferry::enroll::Op::kCheck:
        return pods.count(r.uid) ? ferry::enroll::Reply::success()
                                 : ferry::enroll::Reply::failure("unknown pod " + r.uid);
    }
    return ferry::enroll::Reply::failure("bad op");
  }
  std::mutex mu_;
  std::vector<ferry::enroll::Request> requests;
  std::set<std::string> pods;
};

struct Result {
  int exit_code;
  std::string out, err;
};

// fork + exec with a clean environment, stdin fed, stdout/stderr collected (bounded by the
// plugin's own agent timeout, which the configs below keep short).
Result runPlugin(const std::map<std::string, std::string>& env, const std::string& input) {
  int in[2], out[2], err[2];
  REQUIRE(::pipe(in) == 0);
  REQUIRE(::pipe(out) == 0);
  REQUIRE(::pipe(err) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) {
      ::close(fd);
    }
    std::vector<std::string> kv;
    for (const auto& [k, v] : env) {
      kv.push_back(k + "=" + v);
    }
    std::vector<char*> envp;
    for (std::string& s : kv) {
      envp.push_back(s.data());
    }
    envp.push_back(nullptr);
    char* argv[] = {const_cast<char*>(FERRY_CNI_BINARY), nullptr};
    ::execve(FERRY_CNI_BINARY, argv, envp.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  REQUIRE(::write(in[1], input.data(), input.size()) == static_cast<ssize_t>(input.size()));
  ::close(in[1]);
  Result r{};
  for (auto [fd, sink] : {std::pair{out[0], &r.out}, std::pair{err[0], &r.err}}) {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) {
      sink->append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  r.exit_code = WEXITSTATUS(status);
  return r;
}

const json kPrevResult = {
    {"cniVersion", "1.0.0"},
    {"interfaces", {{{"name", "eth0"}, {"mac", "0a:58:0a:f4:01:0b"}, {"sandbox", "/run/netns/x"}}}},
    {"ips",
     {{{"address", "10.244.1.11/16"}, {"gateway", "10.244.0.1"}, {"interface", 0}},
      {{"address", "fd00:244::1:11/64"}, {"interface", 0}}}},
    {"routes", {{{"dst", "10.244.0.0/16"}}}},
    {"dns", json::object()}};

struct Env {
  std::string dir;
  std::string socket;
  Env() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ferry-cni-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    dir = tmpl;
    socket = dir + "/agent.sock";
  }
  ~Env() { std::filesystem::remove_all(dir); }

  std::string config(bool with_prev = true) const {
    json c = {{"cniVersion", "1.0.0"},
              {"name", "k8s-pod-network"},
              {"type", "ferry-cni"},
              {"socket", socket},
              {"timeout_ms", 2000}};
    if (with_prev) {
      c["prevResult"] = kPrevResult;
    }
    return c.dump();
  }

  std::map<std::string, std::string> vars(const std::string& command,
                                          const std::string& uid = "uid-1") const {
    return {{"CNI_COMMAND", command},
            {"CNI_CONTAINERID", "c0ffee"},
            {"CNI_NETNS", "/run/netns/ferry-test-n1p1"},
            {"CNI_IFNAME", "eth0"},
            {"CNI_PATH", "/opt/cni/bin"},
            {"CNI_ARGS",
             "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1;"
             "K8S_POD_INFRA_CONTAINER_ID=c0ffee;K8S_POD_UID=" +
                 uid}};
  }
};

TEST_CASE("VERSION reports the supported CNI versions", "[cni]") {
  Env env;
  Result r = runPlugin({{"CNI_COMMAND", "VERSION"}}, R"({"cniVersion":"1.0.0"})");
  CHECK(r.exit_code == 0);
  json v = json::parse(r.out);
  CHECK(v["cniVersion"] == "1.0.0");
  CHECK(v["supportedVersions"] == json({"0.3.0", "0.3.1", "0.4.0", "1.0.0"}));
}

TEST_CASE("ADD registers the pod with the agent and passes prevResult through unchanged", "[cni]") {
  Env env;
  FakeAgent agent;
  auto server = ferry::enroll::Server::start(env.socket, agent);
  REQUIRE(server.ok());

  Result add = runPlugin(env.vars("ADD"), env.config());
  INFO(add.err);
  REQUIRE(add.exit_code == 0);
  CHECK(json::parse(add.out) == kPrevResult);
  {
    std::lock_guard lock(agent.mu_);
    REQUIRE(agent.requests.size() == 1);
    const ferry::enroll::PodInfo& pod = agent.requests[0].pod;
    CHECK(agent.requests[0].op == ferry::enroll::Op::kAdd);
    CHECK(pod.uid == "uid-1");
    CHECK(pod.name == "web-1");
    CHECK(pod.ns == "shop");
    CHECK(pod.netns == "/run/netns/ferry-test-n1p1");
    CHECK(pod.ips == std::vector<std::string>{"10.244.1.11", "fd00:244::1:11"});
  }

  Result check = runPlugin(env.vars("CHECK"), env.config());
  CHECK(check.exit_code == 0);
  CHECK(check.out.empty());

  Result del = runPlugin(env.vars("DEL"), env.config(false));
  CHECK(del.exit_code == 0);
  CHECK(del.out.empty());

  // After DEL the agent no longer has it: CHECK fails with "container unknown".
  Result check_gone = runPlugin(env.vars("CHECK"), env.config());
  CHECK(check_gone.exit_code != 0);
  CHECK(json::parse(check_gone.out)["code"] == 3);
}

TEST_CASE("DEL of an unknown pod succeeds (idempotent), with or without an agent", "[cni]") {
  Env env;
  {
    FakeAgent agent;
    auto server = ferry::enroll::Server::start(env.socket, agent);
    REQUIRE(server.ok());
    Result del = runPlugin(env.vars("DEL", "never-added"), env.config(false));
    CHECK(del.exit_code == 0);
    CHECK(del.out.empty());
    std::lock_guard lock(agent.mu_);
    REQUIRE(agent.requests.size() == 1);
    CHECK(agent.requests[0].op == ferry::enroll::Op::kDel);
    CHECK(agent.requests[0].uid == "never-added");
  }
  Result del_no_agent = runPlugin(env.vars("DEL", "never-added"), env.config(false));
  CHECK(del_no_agent.exit_code == 0);
  CHECK_THAT(del_no_agent.err, Catch::Contains("agent unreachable"));
}

TEST_CASE("ADD fails closed with a CNI error when the agent is unreachable", "[cni]") {
  Env env;  // nothing listens on env.socket
  Result add = runPlugin(env.vars("ADD"), env.config());
  CHECK(add.exit_code != 0);
  json e = json::parse(add.out);
  CHECK(e["cniVersion"] == "1.0.0");
  CHECK(e["code"] == 11);
  CHECK_THAT(e["msg"].get<std::string>(),
             Catch::Contains("cannot reach the ferry agent at " + env.socket));
  CHECK_THAT(e["msg"].get<std::string>(), Catch::Contains("shop/web-1"));
  CHECK(e.contains("details"));
}

TEST_CASE("bad invocations get the spec's error codes", "[cni]") {
  Env env;
  struct Row {
    const char* description;
    std::map<std::string, std::string> vars;
    std::string config;
    int code;
  };
  auto no_command = env.vars("ADD");
  no_command.erase("CNI_COMMAND");
  auto no_container = env.vars("ADD");
  no_container.erase("CNI_CONTAINERID");
  auto no_pod_name = env.vars("ADD");
  no_pod_name["CNI_ARGS"] = "K8S_POD_NAMESPACE=shop";
  const std::vector<Row> rows = {
      {"no CNI_COMMAND", no_command, env.config(), 4},
      {"unknown command", env.vars("FROB"), env.config(), 4},
      {"no CNI_CONTAINERID", no_container, env.config(), 4},
      {"no pod name in CNI_ARGS", no_pod_name, env.config(), 4},
      {"config is not JSON", env.vars("ADD"), "{oops", 6},
      {"unsupported cniVersion", env.vars("ADD"), R"({"cniVersion":"9.9.9","name":"x"})", 1},
      {"ADD without prevResult (not chained)", env.vars("ADD"), env.config(false), 7},
      {"socket of the wrong type", env.vars("ADD"),
       R"({"cniVersion":"1.0.0","name":"x","socket":5,"prevResult":{}})", 7},
  };
  for (const Row& row : rows) {
    INFO(row.description);
    Result r = runPlugin(row.vars, row.config);
    CHECK(r.exit_code != 0);
    json e = json::parse(r.out, nullptr, false);
    REQUIRE(e.is_object());
    CHECK(e["code"] == row.code);
    CHECK_FALSE(e["msg"].get<std::string>().empty());
  }
}

}  // namespace
