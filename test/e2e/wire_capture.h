// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// What crosses the wire between nodes: tcpdump on every port of the cluster's bridge (in its
// switch namespace), read back as raw bytes and through tshark with 15008 dissected as TLS.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "e2e/mesh.h"
#include "harness/process.h"

namespace ferry::e2e {

class WireCapture {
 public:
  // Starts tcpdump and waits until it listens.
  static absl::StatusOr<std::unique_ptr<WireCapture>> start(Mesh& mesh, const std::string& name);

  // Sends a UDP datagram carrying a fresh control marker from `pod` across the bridge (UDP is
  // never captured by the mesh), waits until tcpdump has written it — so every packet sent
  // before is in the file too — then stops tcpdump and reads the file.
  absl::Status stop(const harness::Pod& pod, const std::string& to_ip);

  const std::string& bytes() const { return bytes_; }
  bool contains(const std::string& text) const { return bytes_.find(text) != std::string::npos; }
  // The control marker stop() sent: the proof that a search of bytes() can find a marker.
  const std::string& controlMarker() const { return control_; }
  // Frame numbers (one per line) of the packets matching a tshark display filter, counting
  // each frame once (the copy entering the bridge).
  absl::StatusOr<std::string> frames(const std::string& filter) const;
  // One line per packet with TCP payload, for failure messages.
  std::string summary() const;

 private:
  WireCapture(Mesh& mesh, std::string pcap) : mesh_(mesh), pcap_(std::move(pcap)) {}
  absl::StatusOr<std::string> tshark(const std::string& filter, bool numbers_only) const;

  Mesh& mesh_;
  std::string pcap_;
  std::unique_ptr<harness::Process> tcpdump_;
  std::string bytes_;
  std::string control_;
};

}  // namespace ferry::e2e
