// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Which inbound ports carry HTTP, so that their requests are authorized one by one (Request::http)
// and their connections with Request::http_port; every other port is decided once per connection
// as TCP. The agent and `ferryctl check` both ask this, so they decide the same way.

#include <cstdint>
#include <vector>

#include "model/model.h"

namespace ferry::policy {

// Istio's protocol selection: a Service port selecting `workload` whose target is `port` and
// whose `appProtocol` is http, http2, grpc, grpc-web, h2c (or kubernetes.io/h2c, ws, wss), or
// whose name is one of those or starts with "<one of those>-". Ports no Service names stay TCP.
bool isHttpPort(const std::vector<model::Service>& services, const model::Workload& workload,
                uint16_t port);

}  // namespace ferry::policy
