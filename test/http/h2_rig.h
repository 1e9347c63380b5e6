// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <utility>

#include "filter_util.h"
#include "h2_peer.h"
#include "http/http2_filter.h"

namespace ferry::http::testing {

// The app answers every request with 200 and "app:<path>"; gRPC requests get a gRPC response
// with grpc-status 0 in trailers.
inline bool echoApp(const H2Message& req, H2Peer::Reply& reply) {
  const std::string path = req.header(":path");
  if (req.header("content-type") == "application/grpc") {
    reply.headers = {{":status", "200"}, {"content-type", "application/grpc"}};
    reply.body = std::string("\0\0\0\0\2ok", 7);
    reply.trailers = {{"grpc-status", "0"}};
    return true;
  }
  reply.headers = {{":status", "200"}, {"x-seen-user", req.header("x-user")}};
  reply.body = "app:" + path + (req.body.empty() ? "" : ":" + std::to_string(req.body.size()));
  return true;
}

// A client, the filter and an app, all in memory. The filter asks `authorize` (default: the
// AdminDenier).
struct Rig {
  AdminDenier denier;
  std::unique_ptr<Http2Filter> filter;
  H2Peer client{false};
  H2Peer app;
  FilterOutput out;
  bool closed = false;

  explicit Rig(Http2FilterConfig config = {}, H2Peer::Responder responder = echoApp,
               RequestHeaderHook hook = nullptr, nghttp2_option* client_opt = nullptr,
               Authorizer authorize = nullptr)
      : client(false, nullptr, client_opt), app(true, std::move(responder)) {
    auto f = Http2Filter::create(std::move(config),
                                 authorize ? std::move(authorize) : Authorizer(std::ref(denier)),
                                 std::move(hook));
    REQUIRE(f.ok());
    filter = *std::move(f);
    filter->start(out);
  }
  // Moves bytes between the three parties until nothing moves.
  void run() {
    for (int i = 0; i < 1000; ++i) {
      std::string c = client.drain();
      if (!c.empty()) {
        filter->onDownstreamData(c, out);
      }
      std::string a = app.drain();
      if (!a.empty()) {
        filter->onUpstreamData(a, out);
      }
      std::string to_app = std::exchange(out.to_upstream, {});
      std::string to_client = std::exchange(out.to_downstream, {});
      app.feed(to_app);
      client.feed(to_client);
      closed = closed || out.close;
      if (c.empty() && a.empty() && to_app.empty() && to_client.empty()) {
        return;
      }
    }
    FAIL("traffic did not settle");
  }
};

}  // namespace ferry::http::testing
