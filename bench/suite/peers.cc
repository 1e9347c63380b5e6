// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "suite/peers.h"

#include "absl/strings/str_cat.h"

namespace ferry::bench {
namespace {

std::string stunnelTls(const TlsFiles& tls) {
  return absl::StrCat("cert = ", tls.cert, "\nkey = ", tls.key, "\nCAfile = ", tls.ca,
                      "\nverifyChain = yes\nrequireCert = yes\nsslVersionMin = TLSv1.3\n"
                      "sslVersionMax = TLSv1.3\nciphersuites = TLS_AES_128_GCM_SHA256\n");
}

constexpr char kStunnelGlobal[] =
    "foreground = yes\npid =\ndebug = 3\nsocket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n";

std::string haproxyGlobal() {
  // One thread per core like the agent's workers. maxconn fits the descriptor limit (a client
  // side holds two per connection; HAProxy refuses to start if it cannot reserve them).
  return absl::StrCat("global\n  maxconn ", kPeerMaxConnections, "\n  nbthread 2\n",
                      "  ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256\n"
                      "  ssl-default-bind-options ssl-min-ver TLSv1.3\n"
                      "  ssl-default-server-ciphersuites TLS_AES_128_GCM_SHA256\n"
                      "  ssl-default-server-options ssl-min-ver TLSv1.3\n",
                      "defaults\n  maxconn ", kPeerMaxConnections,
                      "\n  timeout connect 5s\n  timeout client 600s\n"
                      "  timeout server 600s\n  timeout http-keep-alive 600s\n");
}

}  // namespace

std::string stunnelClientConfig(const TlsFiles& tls, const std::string& server_ip) {
  return absl::StrCat(kStunnelGlobal,
                      "[http]\nclient = yes\naccept = 127.0.0.1:", kStunnelHttpLocal,
                      "\nconnect = ", server_ip, ":", kStunnelHttpTls, "\n", stunnelTls(tls),
                      "[iperf]\nclient = yes\naccept = 127.0.0.1:", kStunnelIperfLocal,
                      "\nconnect = ", server_ip, ":", kStunnelIperfTls, "\n", stunnelTls(tls));
}

std::string stunnelServerConfig(const TlsFiles& tls) {
  return absl::StrCat(kStunnelGlobal, "[http]\naccept = 0.0.0.0:", kStunnelHttpTls,
                      "\nconnect = 127.0.0.1:", kAppPort, "\n", stunnelTls(tls),
                      "[iperf]\naccept = 0.0.0.0:", kStunnelIperfTls,
                      "\nconnect = 127.0.0.1:", kIperfPort, "\n", stunnelTls(tls));
}

std::string haproxyClientConfig(const TlsFiles& tls, const std::string& server_ip) {
  const std::string server_tls =
      absl::StrCat(" ssl crt ", tls.both, " ca-file ", tls.ca, " verify required\n");
  return absl::StrCat(haproxyGlobal(),
                      "frontend http\n  mode http\n  bind 127.0.0.1:", kHaproxyHttpLocal,
                      "\n  default_backend up_http\n", "backend up_http\n  mode http\n  server s ",
                      server_ip, ":", kHaproxyHttpTls, server_tls,
                      "frontend iperf\n  mode tcp\n  bind 127.0.0.1:", kHaproxyIperfLocal,
                      "\n  default_backend up_iperf\n", "backend up_iperf\n  mode tcp\n  server s ",
                      server_ip, ":", kHaproxyIperfTls, server_tls);
}

std::string haproxyServerConfig(const TlsFiles& tls) {
  const std::string bind_tls =
      absl::StrCat(" ssl crt ", tls.both, " ca-file ", tls.ca, " verify required\n");
  return absl::StrCat(
      haproxyGlobal(), "frontend http\n  mode http\n  bind 0.0.0.0:", kHaproxyHttpTls, bind_tls,
      "  http-request deny unless METH_GET { path_beg /bench/ }\n", "  default_backend app\n",
      "backend app\n  mode http\n  server app 127.0.0.1:", kAppPort, "\n",
      "frontend iperf\n  mode tcp\n  bind 0.0.0.0:", kHaproxyIperfTls, bind_tls,
      "  default_backend iperf\n", "backend iperf\n  mode tcp\n  server app 127.0.0.1:", kIperfPort,
      "\n");
}

}  // namespace ferry::bench
