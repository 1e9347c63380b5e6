// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "agent/config.h"

#include <catch2/catch.hpp>

namespace ferry::agent {
namespace {

TEST_CASE("flags parse into the config with defaults", "[agent]") {
  auto c = parseFlags(
      {"--node=node1", "--certs=/tmp/c", "--capture=none", "--workers=3", "--admin-port=0"});
  REQUIRE(c.ok());
  CHECK(c->node_name == "node1");
  CHECK(c->workers == 3);
  CHECK(c->workerCount() == 3);
  CHECK(c->admin_port == 0);
  CHECK(c->stateFile() == "/run/ferry/node1/pods.json");
  CHECK(c->enroll_socket == "/run/ferry/agent.sock");
  CHECK(c->max_buffer_bytes == kDefaultMaxBufferBytes);
  CHECK(c->cluster_name == "Kubernetes");
  CHECK(c->drain_grace_ms == kDefaultDrainGraceMs);
  CHECK(c->handoverSocket() == "/run/ferry/agent.sock.handover");
  auto drain = parseFlags({"--node=n", "--certs=/c", "--capture=none", "--drain-grace=25s",
                           "--handover-socket=/run/h.sock"});
  REQUIRE(drain.ok());
  CHECK(drain->drain_grace_ms == 25000);
  CHECK(drain->handoverSocket() == "/run/h.sock");
  auto named = parseFlags({"--node=n", "--certs=/c", "--capture=none", "--cluster-name=east-1"});
  REQUIRE(named.ok());
  CHECK(named->cluster_name == "east-1");
  auto k = parseFlags({"--node=node1", "--capture=none", "--controller=ctl:15012",
                       "--bootstrap-token-file=/t", "--controller-ca=/r"});
  REQUIRE(k.ok());
  CHECK(k->controller == "ctl:15012");
  CHECK(k->bootstrap_token_file == "/t");
  CHECK(k->controller_ca == "/r");
}

TEST_CASE("bad flags are refused with a reason", "[agent]") {
  struct Row {
    std::vector<std::string> args;
    const char* reason;
  };
  for (const Row& row : std::vector<Row>{
           {{"--certs=/c", "--capture=none"}, "--node is required"},
           {{"--node=n", "--capture=none"}, "--certs is required"},
           {{"--node=n", "--certs=/c", "--capture=ebpf"}, "--capture must be"},
           {{"--node=n", "--certs=/c"}, "needs --cgroup"},
           {{"--node=n", "--certs=/c", "--capture=none", "--workers=x"}, "not a number"},
           {{"--node=n", "--certs=/c", "--capture=none", "--workers=300"},
            "--workers: \"300\" is not a number in [0, 256]"},
           {{"--node=n", "--certs=/c", "--capture=none", "--fd-reserve=yes"},
            "--fd-reserve must be on or off, got \"yes\""},
           {{"--node=n", "--certs=/c", "--capture=none", "--metrics-port=x"},
            "--metrics-port: \"x\" is not a number in [0, 65535]"},
           {{"--node=n", "--certs=/c", "--capture=none", "--log-level=loud"},
            "--log-level must be debug, info, warn or error"},
           {{"--node=n", "--certs=/c", "--capture=none", "--bogus=1"}, "unknown flag --bogus"},
           {{"node=n"}, "expected --name=value"},
           {{"--node=n", "--certs=/c", "--capture=none", "--drain-grace=5"}, "--drain-grace"},
           {{"--node=n", "--certs=/c", "--capture=none", "--drain-grace=-1s"}, "between 0s and 1h"},
           {{"--node=n", "--certs=/c", "--capture=none", "--drain-grace=2h"}, "between 0s and 1h"},
           {{"--node=n", "--capture=none", "--controller=c:15012"}, "--bootstrap-token-file"},
           {{"--node=n", "--capture=none", "--controller=c", "--bootstrap-token-file=/t",
             "--controller-ca=/r"},
            "HOST:PORT"},
           {{"--node=n", "--capture=none", "--controller=c:1", "--certs=/c",
             "--bootstrap-token-file=/t", "--controller-ca=/r"},
            "replaces --certs"},
           {{"--node=n", "--certs=/c", "--capture=none", "--max-buffer-bytes=10"},
            "between 16 KiB"},
           {{"--node=n", "--certs=/c", "--capture=none", "--pod-cidrs=10.244.0.0/16,10.300.0.0/16"},
            "--pod-cidrs: \"10.300.0.0/16\" is not a CIDR"},
           {{"--node=n", "--certs=/c", "--capture=none", "--cluster-name="}, "--cluster-name must"},
           {{"--node=n", "--certs=/c", "--capture=none", "--cluster-name=a b"},
            "--cluster-name must be 1-63"},
           {{"--node=n", "--certs=/c", "--capture=none", "--cluster-name=a,b"}, "got \"a,b\""},
       }) {
    auto c = parseFlags(row.args);
    REQUIRE_FALSE(c.ok());
    CHECK_THAT(std::string(c.status().message()), Catch::Contains(row.reason));
  }
}

// Every flag the chart, the scripts, the docs and the harness pass (the names of the hand-written
// parser this replaced), each with a valid value, and --help naming it.
TEST_CASE("every agent flag name is accepted and listed by --help", "[agent]") {
  const std::vector<std::string> flags = {
      "--node=n",
      "--workers=2",
      "--enroll-socket=/e.sock",
      "--state-file=/s.json",
      "--manifests=/m",
      "--certs=/c",
      "--trust-domain=td",
      "--cluster-name=c1",
      "--admin-address=127.0.0.1",
      "--admin-port=0",
      "--capture=none",
      "--cgroup=/sys/fs/cgroup/x",
      "--bpffs=/sys/fs/bpf/x",
      "--pod-cidrs=10.0.0.0/8",
      "--service-cidrs=10.96.0.0/12",
      "--socket-mark=7",
      "--bpf-splice=on",
      "--max-buffer-bytes=65536",
      "--max-streams-per-connection=10",
      "--connect-timeout-ms=100",
      "--pool-idle-timeout-ms=100",
      "--outlier-base-ejection-ms=100",
      "--http-header-timeout-ms=100",
      "--max-http-awaiting-headers=10",
      "--http-idle-timeout-ms=100",
      "--fd-reserve=on",
      "--drain-grace=1s",
      "--handover-socket=/h.sock",
      "--log-level=debug",
      "--metrics-address=off",
      "--metrics-port=0",
      "--readiness-address=127.0.0.1",
      "--readiness-port=0",
      "--access-log=off",
      "--access-log-sample=0.5",
      "--trace-endpoint=http://c:4318/v1/traces",
      "--trace-sampling=1",
      "--trace-queue-spans=1000",
      "--trace-batch-spans=10",
  };
  const std::string help = usage();
  for (const std::string& flag : flags) {
    CAPTURE(flag);
    auto c = parseFlags({"--node=n", "--certs=/c", "--capture=none", flag});
    CHECK(c.ok());
    CHECK(help.find("\n  " + flag.substr(0, flag.find('=') + 1)) != std::string::npos);
  }
  // The controller's three flags, given together.
  CHECK(parseFlags({"--node=n", "--capture=none", "--controller=c:1", "--bootstrap-token-file=/t",
                    "--controller-ca=/r"})
            .ok());
  for (const char* name : {"--controller=", "--bootstrap-token-file=", "--controller-ca="}) {
    CHECK(help.find(name) != std::string::npos);
  }
}

TEST_CASE("the flags' defaults are the Config's named defaults", "[agent]") {
  auto c = parseFlags({"--node=n", "--certs=/c", "--capture=none"});
  REQUIRE(c.ok());
  const Config d;
  CHECK(c->workers == d.workers);
  CHECK(c->enroll_socket == d.enroll_socket);
  CHECK(c->state_file == d.state_file);
  CHECK(c->manifests_dir == d.manifests_dir);
  CHECK(c->controller == d.controller);
  CHECK(c->trust_domain == d.trust_domain);
  CHECK(c->cluster_name == d.cluster_name);
  CHECK(c->admin_address == d.admin_address);
  CHECK(c->admin_port == d.admin_port);
  CHECK(c->cgroup_path == d.cgroup_path);
  CHECK(c->bpffs_dir == d.bpffs_dir);
  CHECK(c->pod_cidrs == d.pod_cidrs);
  CHECK(c->service_cidrs == d.service_cidrs);
  CHECK(c->socket_mark == d.socket_mark);
  CHECK(c->bpf_splice == d.bpf_splice);
  CHECK(c->max_buffer_bytes == d.max_buffer_bytes);
  CHECK(c->max_streams_per_connection == d.max_streams_per_connection);
  CHECK(c->connect_timeout_ms == d.connect_timeout_ms);
  CHECK(c->pool_idle_timeout_ms == d.pool_idle_timeout_ms);
  CHECK(c->outlier_base_ejection_ms == d.outlier_base_ejection_ms);
  CHECK(c->http_header_timeout_ms == d.http_header_timeout_ms);
  CHECK(c->max_http_awaiting_headers == d.max_http_awaiting_headers);
  CHECK(c->http_idle_timeout_ms == d.http_idle_timeout_ms);
  CHECK(c->fd_reserve == d.fd_reserve);
  CHECK(c->drain_grace_ms == d.drain_grace_ms);
  CHECK(c->handover_socket == d.handover_socket);
  CHECK(c->log_level == d.log_level);
  CHECK(c->metrics_address == d.metrics_address);
  CHECK(c->readiness_address == d.readiness_address);
  CHECK(c->readiness_port == d.readiness_port);
  CHECK(c->access_log == d.access_log);
  CHECK(c->access_log_sample == d.access_log_sample);
  CHECK(c->trace_endpoint == d.trace_endpoint);
  CHECK(c->trace_sampling == d.trace_sampling);
  CHECK(c->trace_queue_spans == d.trace_queue_spans);
  CHECK(c->trace_batch_spans == d.trace_batch_spans);
  // --metrics-port=N is --metrics-address=0.0.0.0:N; "off" turns the endpoint off.
  CHECK(parseFlags({"--node=n", "--certs=/c", "--capture=none", "--metrics-port=9"})
            ->metrics_address == "0.0.0.0:9");
  CHECK(parseFlags({"--node=n", "--certs=/c", "--capture=none", "--metrics-address=off"})
            ->metrics_address.empty());
}

}  // namespace
}  // namespace ferry::agent
