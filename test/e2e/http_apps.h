// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once
// Driving mesh_apps.py's HTTP tools from inside pods in end-to-end tests: a load of requests from
// n1p1 through the mesh, and what an http-app received (its /__stats, read inside its own pod).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "e2e/mesh.h"

namespace ferry::e2e {

// `count` requests over `connections` keep-alive connections from n1p1 to <vip>:80
// (mesh_apps.py http-load); its JSON summary ({"status": {"200": n, ...}, ...}).
nlohmann::json httpLoad(Mesh& m, const std::string& vip, int count, int connections,
                        const std::string& method = "GET");

// How many answers of `r` (an httpLoad summary) had `status`.
int64_t statusCount(const nlohmann::json& r, const std::string& status);

// What the http-app on <pod>:<port> received (requests by method, by Host, ...).
nlohmann::json backendStats(Mesh& m, int node, int pod, uint16_t port);

}  // namespace ferry::e2e
