// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Configuration of the two peers Ferry is measured against: a stunnel pair and an HAProxy
// pair, each a client-side proxy in the client pod and a server-side proxy in the server pod,
// with mutual TLS between them. Same CA and key type (ECDSA P-256) as the mesh, TLS 1.3 only,
// TLS_AES_128_GCM_SHA256 only (Ferry prefers that suite first too).

#include <cstdint>
#include <string>

namespace ferry::bench {

inline constexpr char kBenchPath[] = "/bench/1k";
inline constexpr uint16_t kAppPort = 8080;
inline constexpr uint16_t kIperfPort = 5201;
// Client-side listeners (loopback in the client pod) and server-side TLS ports.
inline constexpr uint16_t kStunnelHttpLocal = 18080, kStunnelHttpTls = 18443;
inline constexpr uint16_t kStunnelIperfLocal = 15201, kStunnelIperfTls = 18444;
inline constexpr uint16_t kHaproxyHttpLocal = 28080, kHaproxyHttpTls = 28443;
inline constexpr uint16_t kHaproxyIperfLocal = 25201, kHaproxyIperfTls = 28444;

// A peer's client side holds two descriptors per connection; with the 20,000-descriptor hard
// limit of this machine (raised when allowed) the peers hold at most this many.
inline constexpr int kPeerMaxConnections = 9500;
inline constexpr int kPeerHeldConnections = 9000;

struct TlsFiles {
  std::string ca;    // root PEM
  std::string cert;  // leaf PEM
  std::string key;   // key PEM
  std::string both;  // leaf + key in one file (HAProxy's crt)
};

std::string stunnelClientConfig(const TlsFiles& tls, const std::string& server_ip);
std::string stunnelServerConfig(const TlsFiles& tls);
// HTTP in mode http (the server side enforces an ACL: GET on /bench/ only), iperf3 in mode tcp.
std::string haproxyClientConfig(const TlsFiles& tls, const std::string& server_ip);
std::string haproxyServerConfig(const TlsFiles& tls);

}  // namespace ferry::bench
