// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "e2e/wire_capture.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "poll_until.h"

namespace ferry::e2e {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

absl::StatusOr<std::unique_ptr<WireCapture>> WireCapture::start(Mesh& mesh,
                                                                const std::string& name) {
  const std::string pcap = mesh.cluster().scratchDir() + "/" + name + ".pcap";
  std::unique_ptr<WireCapture> capture(new WireCapture(mesh, pcap));
  auto dump = harness::spawnProcess(
      {mesh.cluster().switchNetnsPath(), ""},
      // Every port of the bridge: a capture on the bridge device itself sees only frames the
      // bridge floods or delivers to itself, not the ones it forwards between pods.
      {"/usr/bin/tcpdump", "-i", "any", "--immediate-mode", "-B", "16384", "-U", "-s", "0", "-w",
       pcap},
      mesh.cluster().logPath("tcpdump-" + name));
  if (!dump.ok()) {
    return dump.status();
  }
  capture->tcpdump_ = *std::move(dump);
  // Bounded: tcpdump's start-up line.
  if (testing::pollUntil(
          [&] { return capture->tcpdump_->log().find("listening on") != std::string::npos; },
          std::chrono::seconds(5))) {
    return capture;
  }
  return absl::DeadlineExceededError("tcpdump never listened: " + capture->tcpdump_->log());
}

absl::Status WireCapture::stop(const harness::Pod& pod, const std::string& to_ip) {
  static std::atomic<int> sequence{0};
  control_ = absl::StrCat("FERRY-CONTROL-MARKER-", ::getpid(), "-", sequence++);
  const std::string family = to_ip.find(':') == std::string::npos ? "AF_INET" : "AF_INET6";
  auto sent = mesh_.run(
      pod, {"/usr/bin/python3", "-c",
            "import socket; s=socket.socket(socket." + family +
                ", socket.SOCK_DGRAM); s.sendto(b'" + control_ + "', ('" + to_ip + "', 9999))"});
  if (!sent.ok()) {
    return sent.status();
  }
  // tcpdump -U writes each packet as it comes: once the control marker is in the file, so is
  // everything sent before it. Bounded: 10 s.
  const bool marked =
      testing::pollUntil([&] { return readFile(pcap_).find(control_) != std::string::npos; },
                         std::chrono::seconds(10));
  tcpdump_->signal(SIGINT);
  auto done = tcpdump_->wait(absl::Seconds(10));
  if (!done.ok()) {
    return done.status();
  }
  bytes_ = readFile(pcap_);
  if (!contains(control_)) {
    return absl::InternalError(absl::StrCat("the capture never saw the control datagram",
                                            marked ? "" : " (not in the file after 10 s)", ": ",
                                            tcpdump_->log()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> WireCapture::tshark(const std::string& filter,
                                                bool numbers_only) const {
  // Each frame is captured twice (into the bridge, out of it): keep the incoming copy. Without
  // TCP reassembly every segment of port 15008 is dissected as TLS on its own.
  std::vector<std::string> argv = {"/usr/bin/tshark",
                                   "-n",
                                   "-r",
                                   pcap_,
                                   "-o",
                                   "tcp.desegment_tcp_streams:FALSE",
                                   "-d",
                                   "tcp.port==15008,tls",
                                   "-Y",
                                   "sll.pkttype != 4 && (" + filter + ")"};
  if (numbers_only) {
    argv.insert(argv.end(), {"-T", "fields", "-e", "frame.number"});
  }
  auto r = harness::runProcess({}, argv, absl::Seconds(60));
  if (!r.ok()) {
    return r.status();
  }
  if (r->exit_code != 0) {
    return absl::InternalError(absl::StrCat("tshark exited ", r->exit_code, ": ", r->err));
  }
  return r->out;
}

absl::StatusOr<std::string> WireCapture::frames(const std::string& filter) const {
  return tshark(filter, true);
}

std::string WireCapture::summary() const {
  auto out = tshark("tcp.len > 0", false);
  return out.ok() ? *out : out.status().ToString();
}

}  // namespace ferry::e2e
