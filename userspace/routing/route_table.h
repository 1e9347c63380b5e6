// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/time/time.h"
#include "http/request_view.h"
#include "model/model.h"
#include "routing/fault.h"
#include "routing/filters.h"
#include "routing/retry.h"
#include "routing/route_match.h"

// The compiled, immutable route table: one per snapshot, swapped as a shared_ptr. A worker that
// holds a CompiledRule* keeps the table alive with the shared_ptr it matched against, so a
// route change never pulls a rule from under an in-flight request.
namespace ferry::routing {

struct BackendTarget {
  model::ObjectKey service;  // the backend Service
  uint16_t port = 0;         // service port; 0 = the port the request came to
  uint32_t weight = 1;
  // backendRefs[].filters: only for requests sent to this backend.
  std::optional<model::HttpHeaderModifier> request_headers, response_headers;
  std::optional<UrlRewrite> rewrite;
};

// What a rule's filters and then its chosen backend's filters do to one forwarded request.
struct ForwardEdits {
  http::HeaderEdits request;   // RequestHeaderModifier
  http::HeaderEdits response;  // ResponseHeaderModifier, on the backend's response
  std::string path;            // the path to forward (URLRewrite), query not included
  std::string host;            // the Host to forward (URLRewrite hostname); empty: unchanged
};

// One rule of one HTTPRoute, compiled (regexes built once).
class CompiledRule {
 public:
  const std::string& routeName() const { return route_name_; }  // "ns/name" (metric label)
  size_t ruleIndex() const { return rule_index_; }
  // Weighted choice among backendRefs (weights 90/10 -> 90%/10%). nullptr when every weight is 0
  // or there is no backend (Gateway API: answer 500).
  const BackendTarget* pickBackend(absl::BitGenRef rng) const;
  const std::vector<BackendTarget>& backends() const { return backends_; }
  // RequestHeaderModifier, applied to the forwarded request.
  void applyHeaderModifier(http::HeaderEdits& edits) const;
  // Header modifiers and URLRewrite of the rule, then of `backend` (one of backends()), for a
  // request to the normalized `path`.
  ForwardEdits forwardEdits(const BackendTarget& backend, std::string_view path) const;
  // RequestRedirect: the rule answers with it and has no backends.
  const Redirect* redirect() const { return redirect_ ? &*redirect_ : nullptr; }
  std::optional<absl::Duration> requestTimeout() const { return request_timeout_; }
  std::optional<absl::Duration> backendRequestTimeout() const { return backend_timeout_; }
  const RetryPolicy& retry() const { return retry_; }
  // Fault injection for this request (annotations on the HTTPRoute, see README.md).
  FaultAction fault(absl::BitGenRef rng) const;
  const std::optional<FaultConfig>& faultConfig() const { return fault_; }
  const BackendTarget* mirror() const { return mirror_ ? &*mirror_ : nullptr; }
  // Whether this request is mirrored (RequestMirror percent or fraction n/d); false when there
  // is no mirror. Deterministic and agent-wide (one atomic counter per rule, shared by every
  // worker): request k of the rule (k = 1, 2, ...) is mirrored when floor(k*n/d) moves past
  // floor((k-1)*n/d), so any k consecutive requests hold floor(k*n/d) or ceil(k*n/d) mirrored
  // ones, evenly spread (50%: every second request). The count survives a new snapshot: a
  // table built with the previous one shares the counter of each rule whose route, index and
  // fraction are unchanged (otherwise 1/100 mirrored only the 100th request after each
  // rebuild, so nothing at all when snapshots came more often than that).
  bool shouldMirror() const;

 private:
  friend class RouteTableBuilder;
  friend class RouteTable;  // carryOver()
  CompiledRule() = default;

  std::string route_name_;
  size_t rule_index_ = 0;
  std::vector<BackendTarget> backends_;
  uint64_t total_weight_ = 0;
  std::optional<model::HttpHeaderModifier> header_modifier_, response_modifier_;
  std::optional<Redirect> redirect_;
  std::optional<UrlRewrite> rewrite_;
  std::optional<absl::Duration> request_timeout_, backend_timeout_;
  RetryPolicy retry_;
  std::optional<FaultConfig> fault_;
  std::optional<BackendTarget> mirror_;
  uint64_t mirror_numerator_ = 0, mirror_denominator_ = 1;
  // Requests asked shouldMirror(); shared with the same rule of the tables before and after.
  std::shared_ptr<std::atomic<uint64_t>> mirror_seen_ = std::make_shared<std::atomic<uint64_t>>(0);
};

class RouteTable {
 public:
  // Compiles every HTTPRoute in the view whose parentRef is a Service. Bad routes are skipped
  // with a reason in `errors` (one bad route never stops the others). `previous`, the table
  // this one replaces, hands on per-rule state that must outlive a snapshot (the mirror count).
  static std::shared_ptr<const RouteTable> build(const model::NodeSnapshot& view,
                                                 std::vector<std::string>* errors = nullptr,
                                                 const RouteTable* previous = nullptr);
  // True when an HTTPRoute is attached to service:port: the outbound agent then parses HTTP.
  bool hasRoutes(const model::ObjectKey& service, uint16_t port) const;
  // The matching rule by Gateway API precedence, or nullptr (answer 404, route not found).
  const CompiledRule* match(const model::ObjectKey& service, uint16_t port,
                            const http::RequestView& request) const;

  size_t ruleCount() const { return rules_.size(); }
  size_t routeCount() const { return route_count_; }

 private:
  friend class RouteTableBuilder;
  RouteTable() = default;
  // build(): each rule still in `previous` (same route and index, same mirror fraction) shares
  // its mirror counter.
  void carryOver(const RouteTable& previous);

  // One HTTPRouteMatch of one rule, attached to one parent port (0 = every port).
  struct Entry {
    uint16_t port = 0;
    CompiledMatch match;
    const CompiledRule* rule = nullptr;
  };

  std::vector<std::unique_ptr<CompiledRule>> rules_;
  // Per parent Service, entries in precedence order: the first that matches wins.
  std::map<model::ObjectKey, std::vector<Entry>> by_service_;
  size_t route_count_ = 0;
};

}  // namespace ferry::routing
