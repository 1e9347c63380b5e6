// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "routing/route_table.h"

#include <algorithm>
#include <map>
#include <string_view>
#include <tuple>
#include <utility>

#include "absl/random/distributions.h"
#include "absl/strings/str_cat.h"

namespace ferry::routing {

const BackendTarget* CompiledRule::pickBackend(absl::BitGenRef rng) const {
  if (total_weight_ == 0) {
    return nullptr;
  }
  if (backends_.size() == 1) {
    return &backends_[0];
  }
  uint64_t ticket = absl::Uniform<uint64_t>(rng, 0, total_weight_);
  for (const BackendTarget& b : backends_) {
    if (ticket < b.weight) {
      return &b;
    }
    ticket -= b.weight;
  }
  return nullptr;  // unreachable: tickets are below the sum of the weights
}

void CompiledRule::applyHeaderModifier(http::HeaderEdits& edits) const {
  if (header_modifier_) {
    routing::applyHeaderModifier(*header_modifier_, edits);
  }
}

ForwardEdits CompiledRule::forwardEdits(const BackendTarget& backend, std::string_view path) const {
  ForwardEdits out;
  applyHeaderModifier(out.request);
  if (backend.request_headers) {
    routing::applyHeaderModifier(*backend.request_headers, out.request);
  }
  if (response_modifier_) {
    routing::applyHeaderModifier(*response_modifier_, out.response);
  }
  if (backend.response_headers) {
    routing::applyHeaderModifier(*backend.response_headers, out.response);
  }
  // The decoder allows one URLRewrite per request: the rule's or the backend's.
  const UrlRewrite* rewrite = rewrite_ ? &*rewrite_ : backend.rewrite ? &*backend.rewrite : nullptr;
  out.path = rewrite && rewrite->path ? rewrite->path->apply(path) : std::string(path);
  if (rewrite) {
    out.host = rewrite->hostname;
  }
  return out;
}

FaultAction CompiledRule::fault(absl::BitGenRef rng) const {
  return fault_ ? fault_->roll(rng) : FaultAction{};
}

bool CompiledRule::shouldMirror() const {
  if (!mirror_ || mirror_numerator_ == 0) {
    return false;
  }
  if (mirror_numerator_ >= mirror_denominator_) {
    return true;
  }
  // The pattern repeats every d requests: only k mod d matters (and products stay small).
  const uint64_t k = mirror_seen_->fetch_add(1, std::memory_order_relaxed) % mirror_denominator_;
  return (k + 1) * mirror_numerator_ / mirror_denominator_ >
         k * mirror_numerator_ / mirror_denominator_;
}

// Turns model routes into CompiledRules and precedence-sorted entries.
class RouteTableBuilder {
 public:
  explicit RouteTableBuilder(RouteTable& table) : table_(table) {}

  absl::Status add(const model::HttpRoute& route) {
    if (route.parent_services.empty()) {
      return absl::OkStatus();  // attached to Gateways only: another implementation's route
    }
    if (route.parent_ports.size() != route.parent_services.size()) {
      return absl::InvalidArgumentError("parent_ports and parent_services differ in length");
    }
    std::optional<FaultConfig> fault;
    auto parsed = parseFaultAnnotations(route.annotations);
    if (!parsed.ok()) {
      return parsed.status();
    }
    fault = *parsed;
    auto retry = parseRetryAnnotations(route.annotations);
    if (!retry.ok()) {
      return retry.status();
    }
    std::vector<std::unique_ptr<CompiledRule>> rules;
    std::vector<Pending> pending;
    for (size_t r = 0; r < route.rules.size(); ++r) {
      auto rule = compileRule(route, r, fault, *retry);
      if (!rule.ok()) {
        return rule.status();
      }
      const model::HttpRouteRule& model_rule = route.rules[r];
      // A rule without matches matches every request: the Gateway API default is
      // PathPrefix "/".
      std::vector<model::HttpRouteMatch> matches = model_rule.matches;
      if (matches.empty()) {
        matches.emplace_back();
      }
      for (size_t m = 0; m < matches.size(); ++m) {
        auto compiled = CompiledMatch::compile(matches[m]);
        if (!compiled.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat("rule ", r, " match ", m, ": ", compiled.status().message()));
        }
        pending.push_back(Pending{.match = *std::move(compiled),
                                  .rule = rule->get(),
                                  .route_name = route.key.str(),
                                  .rule_index = r,
                                  .match_index = m});
      }
      rules.push_back(*std::move(rule));
    }
    for (size_t p = 0; p < route.parent_services.size(); ++p) {
      for (const Pending& entry : pending) {
        entries_[route.parent_services[p]].push_back(
            {.port = route.parent_ports[p], .pending = entry});
      }
    }
    for (auto& rule : rules) {
      table_.rules_.push_back(std::move(rule));
    }
    ++table_.route_count_;
    return absl::OkStatus();
  }

  void finish() {
    for (auto& [service, list] : entries_) {
      std::stable_sort(list.begin(), list.end(), [](const Attached& a, const Attached& b) {
        return precedes(a.pending, b.pending);
      });
      auto& out = table_.by_service_[service];
      out.reserve(list.size());
      for (Attached& a : list) {
        out.push_back(RouteTable::Entry{
            .port = a.port, .match = std::move(a.pending.match), .rule = a.pending.rule});
      }
    }
  }

 private:
  struct Pending {
    CompiledMatch match;
    const CompiledRule* rule;
    std::string route_name;
    size_t rule_index, match_index;
  };
  struct Attached {
    uint16_t port;
    Pending pending;
  };

  // Gateway API HTTPRouteRule precedence; ties go to the alphabetically first route (the
  // model carries no creation time), then rule order, then match order.
  static bool precedes(const Pending& a, const Pending& b) {
    const CompiledMatch& x = a.match;
    const CompiledMatch& y = b.match;
    auto key = [](const CompiledMatch& m) {
      // Only prefixes and exact paths order by length; regex lengths mean nothing.
      size_t length = m.pathRank() == CompiledMatch::PathRank::kRegex ? 0 : m.pathLength();
      return std::make_tuple(static_cast<int>(m.pathRank()), length, m.hasMethod(), m.headerCount(),
                             m.queryCount());
    };
    auto kx = key(x);
    auto ky = key(y);
    if (kx != ky) {
      return kx > ky;
    }
    return std::tie(a.route_name, a.rule_index, a.match_index) <
           std::tie(b.route_name, b.rule_index, b.match_index);
  }

  static absl::StatusOr<std::unique_ptr<CompiledRule>> compileRule(
      const model::HttpRoute& route, size_t index, const std::optional<FaultConfig>& fault,
      const std::optional<RetryAnnotations>& retry) {
    const model::HttpRouteRule& in = route.rules[index];
    std::unique_ptr<CompiledRule> rule(new CompiledRule());
    rule->route_name_ = route.key.str();
    rule->rule_index_ = index;
    // ReplacePrefixMatch replaces what the rule's one PathPrefix match matched (the decoder
    // refuses it on any other rule).
    std::string prefix = "/";
    if (!in.matches.empty() && in.matches[0].path) {
      prefix = in.matches[0].path->value;
    }
    auto urlRewrite = [&](const model::HttpUrlRewrite& r) {
      UrlRewrite out{.hostname = r.hostname, .path = std::nullopt};
      if (r.path) {
        out.path.emplace(*r.path, prefix);
      }
      return out;
    };
    for (const model::BackendRef& b : in.backends) {
      BackendTarget target{.service = b.service, .port = b.port, .weight = b.weight};
      target.request_headers = b.filters.request_header_modifier;
      target.response_headers = b.filters.response_header_modifier;
      if (b.filters.rewrite) {
        target.rewrite = urlRewrite(*b.filters.rewrite);
      }
      rule->backends_.push_back(std::move(target));
      rule->total_weight_ += b.weight;
    }
    rule->header_modifier_ = in.request_header_modifier;
    rule->response_modifier_ = in.response_header_modifier;
    if (in.redirect) {
      rule->redirect_.emplace(*in.redirect, prefix);
    }
    if (in.rewrite) {
      rule->rewrite_ = urlRewrite(*in.rewrite);
    }
    if (in.request_timeout_ms && *in.request_timeout_ms > 0) {
      rule->request_timeout_ = absl::Milliseconds(*in.request_timeout_ms);
    }
    if (in.backend_request_timeout_ms && *in.backend_request_timeout_ms > 0) {
      rule->backend_timeout_ = absl::Milliseconds(*in.backend_request_timeout_ms);
    }
    if (rule->request_timeout_ && rule->backend_timeout_ &&
        *rule->backend_timeout_ > *rule->request_timeout_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rule ", index, ": timeouts.backendRequest (", *in.backend_request_timeout_ms,
          "ms) is longer than timeouts.request (", *in.request_timeout_ms, "ms)"));
    }
    if (in.retry) {
      rule->retry_.attempts = in.retry->attempts;
      rule->retry_.status_codes = in.retry->codes;
      rule->retry_.base_backoff = absl::Milliseconds(in.retry->backoff_ms);
      // Envoy's default cap: ten times the base interval.
      rule->retry_.max_backoff = rule->retry_.base_backoff * 10;
    } else if (retry && retry->attempts) {
      rule->retry_.attempts = *retry->attempts;  // the route's annotation (a GRPCRoute's only way)
      rule->retry_.max_backoff = rule->retry_.base_backoff * 10;
    }
    if (retry) {
      rule->retry_.grpc_statuses = retry->grpc_statuses;
    }
    rule->fault_ = fault;
    if (in.mirror) {
      rule->mirror_ =
          BackendTarget{.service = in.mirror->service, .port = in.mirror->port, .weight = 1};
      if (in.mirror_denominator == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("rule ", index, ": RequestMirror fraction denominator is 0"));
      }
      rule->mirror_numerator_ = std::min(in.mirror_numerator, in.mirror_denominator);
      rule->mirror_denominator_ = in.mirror_denominator;
    }
    return rule;
  }

  RouteTable& table_;
  std::map<model::ObjectKey, std::vector<Attached>> entries_;
};

std::shared_ptr<const RouteTable> RouteTable::build(const model::NodeSnapshot& view,
                                                    std::vector<std::string>* errors,
                                                    const RouteTable* previous) {
  std::shared_ptr<RouteTable> table(new RouteTable());
  RouteTableBuilder builder(*table);
  for (const model::HttpRoute& route : view.routes) {
    absl::Status status = builder.add(route);
    if (!status.ok() && errors != nullptr) {
      errors->push_back(
          absl::StrCat("HTTPRoute ", route.key.str(), " skipped: ", status.message()));
    }
  }
  builder.finish();
  if (previous != nullptr) {
    table->carryOver(*previous);
  }
  return table;
}

void RouteTable::carryOver(const RouteTable& previous) {
  std::map<std::pair<std::string_view, size_t>, const CompiledRule*> before;
  for (const auto& rule : previous.rules_) {
    before.emplace(std::make_pair(std::string_view(rule->route_name_), rule->rule_index_),
                   rule.get());
  }
  for (const auto& rule : rules_) {
    auto it = before.find({rule->route_name_, rule->rule_index_});
    if (it != before.end() && it->second->mirror_numerator_ == rule->mirror_numerator_ &&
        it->second->mirror_denominator_ == rule->mirror_denominator_) {
      rule->mirror_seen_ = it->second->mirror_seen_;
    }
  }
}

bool RouteTable::hasRoutes(const model::ObjectKey& service, uint16_t port) const {
  auto it = by_service_.find(service);
  if (it == by_service_.end()) {
    return false;
  }
  return std::any_of(it->second.begin(), it->second.end(),
                     [port](const Entry& e) { return e.port == 0 || e.port == port; });
}

const CompiledRule* RouteTable::match(const model::ObjectKey& service, uint16_t port,
                                      const http::RequestView& request) const {
  auto it = by_service_.find(service);
  if (it == by_service_.end()) {
    return nullptr;
  }
  for (const Entry& e : it->second) {
    if ((e.port == 0 || e.port == port) && e.match.matches(request)) {
      return e.rule;
    }
  }
  return nullptr;
}

}  // namespace ferry::routing
