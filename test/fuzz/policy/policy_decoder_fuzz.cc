// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The manifest decoder against arbitrary bytes (YAML or JSON, any kinds, several documents).
// Invariants beyond "no crash, no sanitizer report":
//  - every result either decodes or carries a non-empty reason;
//  - whatever AuthorizationPolicy the decoder admits, the engine compiles without error (the
//    controller's admission and the agent's engine agree), and evaluating and explaining it
//    at L4 and L7 works.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "k8s/decode.h"
#include "policy/engine.h"

// A broken invariant aborts: a finding for libFuzzer, a failure for the corpus driver.
#define FUZZ_CHECK(cond)                                                                     \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Kubernetes refuses objects above ~1.5 MiB; the loader caps files. Keep inputs small so the
  // fuzzer explores structure rather than size.
  if (size > 64 * 1024) {
    return 0;
  }
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<ferry::model::AuthorizationPolicy> policies;
  for (auto& doc : ferry::k8s::decodeDocuments(text, "fuzz.yaml")) {
    if (!doc.decoded.ok()) {
      FUZZ_CHECK(!doc.decoded.status().message().empty());
      // A refused RateLimitPolicy's stand-in limits its target to zero.
      if (doc.stand_in) {
        if (auto* l = std::get_if<ferry::model::RateLimitPolicy>(&doc.stand_in->object)) {
          FUZZ_CHECK(!l->refused.empty() && l->total && l->total->requests_per_second == 0 &&
                     !l->identity && l->overrides.empty());
          continue;
        }
      }
      // A refused policy's stand-in denies what it selects and always compiles.
      if (doc.stand_in) {
        auto* p = std::get_if<ferry::model::AuthorizationPolicy>(&doc.stand_in->object);
        FUZZ_CHECK(p != nullptr && p->action == ferry::model::PolicyAction::kDeny &&
                   !p->refused.empty() && ferry::policy::compile(*p).ok());
        policies.push_back(*p);
      }
      continue;
    }
    if (auto* p = std::get_if<ferry::model::AuthorizationPolicy>(&doc.decoded->object)) {
      FUZZ_CHECK(ferry::policy::compile(*p).ok());
      policies.push_back(*p);
    }
  }
  auto snapshot = ferry::policy::PolicySnapshot::build(policies);
  FUZZ_CHECK(snapshot->errors().empty());
  ferry::policy::HttpRequest http{"GET", "web.demo", "/admin/x?y", {{"x-token", "a"}}};
  ferry::policy::Request request;
  request.source_principal = "spiffe://cluster.local/ns/demo/sa/client";
  request.source_ip = ferry::net::IpAddress::parse("10.244.1.11");
  request.destination_ip = ferry::net::IpAddress::parse("10.244.1.12");
  request.destination_port = 8080;
  for (const auto& p : policies) {
    auto view = snapshot->forWorkload(p.key.ns, p.selector.value_or(ferry::model::Labels{}));
    request.http = &http;
    auto l7 = view.evaluate(request);
    FUZZ_CHECK(view.explain(request).decision.str() == l7.str());
    request.http = nullptr;
    auto l4 = view.evaluate(request);
    FUZZ_CHECK(view.explain(request).decision.str() == l4.str());
  }
  return 0;
}
