// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// ferry-agent: wires the parts chosen by the flags together and runs until SIGTERM/SIGINT.
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent.h"
#include "agent/parts.h"
#include "ferry/version.h"
#include "log/log.h"
#include "process/process.h"

int main(int argc, char** argv) {
  ferry::process::configure();
  using namespace ferry::agent;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::cout << usage();
    return 0;
  }
  if (!args.empty() && args[0] == "--version") {
    std::cout << "ferry-agent " << ferry::kVersion << "\n";
    return 0;
  }
  auto config = parseFlags(args);
  if (!config.ok()) {
    std::cerr << "ferry-agent: " << config.status().message() << "\n";
    return 2;
  }
  setLogLevel(*ferry::parseLogLevel(config->log_level));
  // Block the signals in every thread; the main thread waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // A proxy holds two descriptors per connection: take the whole hard limit.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }

  // Making keys and certificate requests runs OpenSSL code an idle agent does not: after each
  // round that installed certificates, the same goes back.
  auto parts =
      buildParts(*config, [] { ferry::process::giveBackMemory("installing certificates"); });
  if (!parts.ok()) {
    LOG_ERROR(parts.status().ToString());
    return 1;
  }
  auto agent = Agent::start(*config, *std::move(parts));
  if (!agent.ok()) {
    LOG_ERROR("cannot start: ", agent.status().ToString());
    return 1;
  }
  // Starting allocated and freed much (loading the BPF programs, the first certificates and
  // snapshot: 5 MiB of idle heap seen) and ran code that does not run again (1.6 MB of
  // OpenSSL's alone): both go back (bench/README.md).
  ferry::process::giveBackMemory("starting");
  int sig = 0;
  sigwait(&signals, &sig);
  LOG_INFO("signal ", sig, ": draining (grace ", config->drain_grace_ms, " ms)");
  // A second signal (SIGTERM or SIGINT) ends the drain at once, as a second Ctrl-C does. Two
  // different signals sent together are both seen (the same one twice may merge into one).
  std::atomic<bool> drained{false};
  std::thread second([&] {
    int again = 0;
    sigwait(&signals, &again);
    if (!drained.load()) {
      LOG_INFO("signal ", again, " again: ending the drain now");
      (*agent)->endDrain();
    }
  });
  (*agent)->drain(std::chrono::milliseconds(config->drain_grace_ms));
  drained.store(true);
  pthread_kill(second.native_handle(), SIGTERM);  // wakes its sigwait; the signal is blocked
  second.join();
  LOG_INFO("stopped");
  return 0;
}
