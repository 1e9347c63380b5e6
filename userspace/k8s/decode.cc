// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "k8s/decode.h"

#include <exception>
#include <nlohmann/json.hpp>

#include "k8s/budget.h"
#include "k8s/decoders.h"
#include "k8s/field.h"
#include "policy/text.h"

namespace ferry::k8s {
namespace {

using internal::DecodeError;
using internal::Field;
using internal::Meta;

struct KindInfo {
  Kind kind;
  std::string_view name;
  std::vector<std::string_view> api_versions;
  bool namespaced;
};

const std::vector<KindInfo>& kinds() {
  static const std::vector<KindInfo> kKinds = {
      {Kind::kNamespace, "Namespace", {"v1"}, false},
      {Kind::kServiceAccount, "ServiceAccount", {"v1"}, true},
      {Kind::kPod, "Pod", {"v1"}, true},
      {Kind::kService, "Service", {"v1"}, true},
      {Kind::kEndpointSlice, "EndpointSlice", {"discovery.k8s.io/v1"}, true},
      {Kind::kAuthorizationPolicy, "AuthorizationPolicy", {"security.ferry.dev/v1alpha1"}, true},
      {Kind::kPeerAuthentication, "PeerAuthentication", {"security.ferry.dev/v1alpha1"}, true},
      // v1beta1 is the same schema, still served by clusters with older CRDs installed.
      {Kind::kHttpRoute,
       "HTTPRoute",
       {"gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"},
       true},
      {Kind::kRateLimitPolicy, "RateLimitPolicy", {"security.ferry.dev/v1alpha1"}, true},
      {Kind::kRequestAuthentication,
       "RequestAuthentication",
       {"security.ferry.dev/v1alpha1"},
       true},
      {Kind::kGrpcRoute, "GRPCRoute", {"gateway.networking.k8s.io/v1"}, true},
  };
  return kKinds;
}

const KindInfo& infoFor(Kind kind) {
  for (const auto& k : kinds()) {
    if (k.kind == kind) {
      return k;
    }
  }
  return kinds().front();
}

std::string joined(const std::vector<std::string_view>& items) {
  std::string out;
  for (auto item : items) {
    out += out.empty() ? "" : " or ";
    out += item;
  }
  return out;
}

// The object's name as far as it can be read, for error messages.
std::optional<ObjectRef> peekRef(Kind kind, const YAML::Node& node, const DecodeOptions& options) {
  if (!node.IsMap()) {
    return std::nullopt;
  }
  Field root(node, "");
  Field meta = root["metadata"];
  if (!meta.node().IsMap()) {
    return std::nullopt;
  }
  Field name = meta["name"];
  Field ns = meta["namespace"];
  if (!name.node().IsScalar() || name.node().Scalar().empty()) {
    return std::nullopt;
  }
  ObjectRef ref{kind, {"", name.node().Scalar()}};
  if (infoFor(kind).namespaced) {
    ref.key.ns = ns.node().IsScalar() && !ns.node().Scalar().empty() ? ns.node().Scalar()
                                                                     : options.default_namespace;
  }
  return ref;
}

std::string describe(const std::optional<ObjectRef>& ref, Kind kind) {
  return ref ? ref->str() : text::cat(kindName(kind), " <unnamed>");
}

Object decodeBody(Kind kind, const Field& root, const Meta& meta, const DecodeOptions& options) {
  switch (kind) {
    case Kind::kNamespace:
      return internal::decodeNamespace(root, meta);
    case Kind::kServiceAccount:
      return internal::decodeServiceAccount(root, meta);
    case Kind::kPod:
      return internal::decodePod(root, meta);
    case Kind::kService:
      return internal::decodeService(root, meta);
    case Kind::kEndpointSlice:
      return internal::decodeEndpointSlice(root, meta);
    case Kind::kAuthorizationPolicy:
      return internal::decodeAuthorizationPolicy(root, meta, options);
    case Kind::kPeerAuthentication:
      return internal::decodePeerAuthentication(root, meta);
    case Kind::kHttpRoute:
      return internal::decodeHttpRoute(root, meta);
    case Kind::kRateLimitPolicy:
      return internal::decodeRateLimitPolicy(root, meta);
    case Kind::kRequestAuthentication:
      return internal::decodeRequestAuthentication(root, meta);
    case Kind::kGrpcRoute:
      return internal::decodeGrpcRoute(root, meta);
  }
  root.fail("unhandled kind");
}

absl::StatusOr<Decoded> decodeKnown(Kind kind, const YAML::Node& node, bool require_type_meta,
                                    const DecodeOptions& options) {
  std::optional<ObjectRef> ref = peekRef(kind, node, options);
  const KindInfo& info = infoFor(kind);
  try {
    Field root(node, "");
    if (kind == Kind::kEndpointSlice) {
      root.allowOnly({"apiVersion", "kind", "metadata", "addressType", "endpoints", "ports"});
    } else if (kind == Kind::kServiceAccount) {
      root.allowOnly({"apiVersion", "kind", "metadata", "secrets", "imagePullSecrets",
                      "automountServiceAccountToken"});
    } else {
      root.allowOnly({"apiVersion", "kind", "metadata", "spec", "status"});
    }
    Field api_version = root["apiVersion"];
    if (api_version.present() || require_type_meta) {
      std::string v = api_version.nonEmptyStr();
      bool known = false;
      for (auto a : info.api_versions) {
        known = known || a == v;
      }
      if (!known) {
        api_version.fail(text::cat("'", v, "' is not a version Ferry reads for ", info.name,
                                   " (expected ", joined(info.api_versions), ")"));
      }
    }
    Field metadata = root["metadata"];
    if (!metadata.present()) {
      metadata.fail("required field is missing");
    }
    Meta meta = internal::decodeMeta(metadata, info.namespaced, options);
    Decoded decoded;
    decoded.ref = ObjectRef{kind, meta.key};
    decoded.resource_version = meta.resource_version;
    decoded.object = decodeBody(kind, root, meta, options);
    return decoded;
  } catch (const DecodeError& e) {
    return absl::InvalidArgumentError(text::cat(describe(ref, kind), ": ", e.what()));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(text::cat(describe(ref, kind), ": ", e.what()));
  }
}

// Splits off the kind of a document, or says why it has none Ferry reads.
absl::StatusOr<std::string> kindText(const YAML::Node& node) {
  if (!node.IsMap()) {
    return absl::InvalidArgumentError("expected an object (a map with apiVersion and kind)");
  }
  Field kind = Field(node, "")["kind"];
  if (!kind.present() || !kind.node().IsScalar() || kind.node().Scalar().empty()) {
    return absl::InvalidArgumentError("kind: required field is missing");
  }
  return kind.node().Scalar();
}

void addStandIn(Kind kind, const YAML::Node& node, const DecodeOptions& options,
                DocumentResult& result) {
  if (!result.decoded.ok()) {
    result.stand_in =
        refusedStandIn(kind, node, std::string(result.decoded.status().message()), options);
  }
}

using internal::Budget;

// The one result that stands for a file over budget.
DocumentResult refusal(std::string_view source, const Budget& budget) {
  return {std::string(source), std::nullopt,
          absl::InvalidArgumentError(
              text::cat(source, ": ", budget.over(), ": the whole file is refused (split it)")),
          std::nullopt, true};
}

void decodeInto(const YAML::Node& node, const std::string& source, const DecodeOptions& options,
                Budget& budget, std::vector<DocumentResult>& out) {
  auto kind_name = kindText(node);
  const bool list = kind_name.ok() && kind_name->ends_with("List");
  // A List is not an object of its own; its items are.
  if (!list && !budget.chargeObject()) {
    return;
  }
  if (!kind_name.ok()) {
    out.push_back({source, std::nullopt, kind_name.status()});
    return;
  }
  // `kind: List` (kubectl get -o yaml) and typed lists (PodList) hold items.
  if (list) {
    std::optional<Kind> item_kind;
    if (*kind_name != "List") {
      item_kind = kindFromName(kind_name->substr(0, kind_name->size() - 4));
    }
    YAML::Node items = node["items"];
    if (items.IsDefined() && !items.IsNull() && !items.IsSequence()) {
      out.push_back(
          {source, std::nullopt,
           absl::InvalidArgumentError(text::cat(*kind_name, ": items: expected a list"))});
      return;
    }
    size_t i = 0;
    for (const auto& item : items) {
      std::string item_source = text::cat(source, ", item ", i++);
      if (item_kind && item.IsMap() && !item["kind"]) {
        if (!budget.chargeObject()) {
          return;
        }
        auto decoded = decodeObjectAs(*item_kind, item, options);
        out.push_back({item_source, peekRef(*item_kind, item, options), std::move(decoded)});
        addStandIn(*item_kind, item, options, out.back());
      } else {
        decodeInto(item, item_source, options, budget, out);
      }
      if (!budget.over().empty()) {
        return;
      }
    }
    return;
  }
  std::optional<Kind> kind = kindFromName(*kind_name);
  if (!kind) {
    out.push_back({source, std::nullopt,
                   absl::InvalidArgumentError(text::cat(
                       "kind '", *kind_name,
                       "' is not one Ferry reads (Namespace, ServiceAccount, Pod, Service, "
                       "EndpointSlice, AuthorizationPolicy, PeerAuthentication, HTTPRoute, "
                       "RateLimitPolicy, RequestAuthentication, GRPCRoute)"))});
    return;
  }
  out.push_back({source, peekRef(*kind, node, options), decodeKnown(*kind, node, true, options)});
  addStandIn(*kind, node, options, out.back());
}

// YAML 1.2 (section 5.4) reads CR LF and a lone CR each as one line break. yaml-cpp 0.7 takes a
// lone CR for a space in places: an anchor, a lone CR, then a plain scalar holding a ','
// ("&w\r-,") never returns and grows without bound (found by fuzzing). Breaks become LF before
// the parser or the scan below sees the text, as the specification normalizes them.
std::string normalizeLineBreaks(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\r') {
      out.push_back(text[i]);
    } else if (i + 1 >= text.size() || text[i + 1] != '\n') {
      out.push_back('\n');
    }
  }
  return out;
}

// YAML streams hold printable characters only (YAML 1.2, section 5.1): of the C0 controls, tab,
// LF and CR. yaml-cpp 0.7 loops with memory growing without bound on some others ("\0,~L",
// found by fuzzing), so they are refused before it sees them.
absl::Status checkControlCharacters(std::string_view text) {
  size_t line = 1;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      ++line;
    } else if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      const std::string code = {'0', 'x', kHex[c >> 4], kHex[c & 0xf]};
      return absl::InvalidArgumentError(text::cat("line ", line, ": control character ", code,
                                                  " (YAML allows only tab, LF and CR)"));
    }
  }
  return absl::OkStatus();
}

// yaml-cpp 0.7 never returns (and grows without bound) on a ',' token outside any flow
// collection: after a root flow collection or quoted scalar ("{},", "'x',"), where a node should
// start (",", "&a ,", "!t,"); found by fuzzing. Outside flow collections a ',' is only ever
// part of a plain scalar ("a,b"), so any other ',' there is invalid YAML and the text is refused
// before the parser sees it. The scan knows quotes, comments, anchors, tags and block scalars
// ("|", ">"), whose content is opaque text.
//
// `flow_entries` counts the entries of flow collections ('[', '{' and ',' inside them): yaml-cpp's
// scanner queues every token of a flow collection before the first event, about 300 bytes each
// (an 8 MiB `[1,1,...]` took 1.1 GiB before any budget could count a node).
absl::Status checkFlowCommas(std::string_view text, size_t* flow_entries = nullptr) {
  size_t entries_unused = 0;
  size_t& entries = flow_entries != nullptr ? *flow_entries : entries_unused;
  if (auto st = checkControlCharacters(text); !st.ok()) {
    return st;
  }
  enum class State { kNodeStart, kPlain, kAfterNode };
  State state = State::kNodeStart;
  int depth = 0;
  size_t line = 1;
  int line_indent = 0;
  int block_parent = -1;  // inside a block scalar: lines indented more than this are content
  bool block_pending = false;
  bool at_line_start = true;
  size_t i = 0;
  auto isSpace = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  auto ends = [&](size_t j) { return j >= text.size() || isSpace(text[j]) || text[j] == '\n'; };
  while (i < text.size()) {
    if (at_line_start) {
      size_t start = i;
      while (i < text.size() && text[i] == ' ') {
        ++i;
      }
      line_indent = static_cast<int>(i - start);
      bool blank = i >= text.size() || text[i] == '\n' || text[i] == '\r';
      if (block_parent >= 0 && (blank || line_indent > block_parent)) {
        size_t eol = text.find('\n', i);
        i = eol == std::string_view::npos ? text.size() : eol + 1;
        ++line;
        continue;
      }
      block_parent = -1;
      at_line_start = false;
      if (depth == 0) {
        state = State::kNodeStart;
      }
      continue;
    }
    char c = text[i];
    if (c == '\n') {
      if (block_pending && depth == 0) {
        block_parent = line_indent;
      }
      block_pending = false;
      at_line_start = true;
      ++line;
      ++i;
      continue;
    }
    if (isSpace(c)) {
      ++i;
      continue;
    }
    if (c == '#' && (i == 0 || isSpace(text[i - 1]) || text[i - 1] == '\n')) {
      while (i < text.size() && text[i] != '\n') {
        ++i;
      }
      continue;
    }
    block_pending = false;
    if (depth > 0) {
      // Inside a flow collection ',' separates entries; only quotes and nesting matter.
      size_t prev = i;
      while (prev > 0 && isSpace(text[prev - 1])) {
        --prev;
      }
      // In a flow collection a quote opens a scalar only where a scalar may begin.
      bool scalar_start =
          prev == 0 || std::string_view("{[,:\n").find(text[prev - 1]) != std::string_view::npos;
      if ((c == '"' || c == '\'') && scalar_start) {
        state = State::kNodeStart;
      } else if (c == '{' || c == '[') {
        ++depth;
        ++entries;
        ++i;
        continue;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) {
          state = State::kAfterNode;
        }
        ++i;
        continue;
      } else {
        entries += c == ',' ? 1 : 0;
        ++i;
        continue;
      }
    }
    if (state == State::kPlain) {
      // A plain scalar runs to the end of the line, or to ": " which starts a value.
      if (c == ':' && ends(i + 1)) {
        state = State::kNodeStart;
      }
      ++i;
      continue;
    }
    if (c == ',') {
      return absl::InvalidArgumentError(
          text::cat("line ", line, ": a ',' outside any flow collection is not valid YAML here"));
    }
    if (state == State::kAfterNode) {
      if (c == ':' && ends(i + 1)) {
        state = State::kNodeStart;  // a flow or quoted key
      }
      ++i;
      continue;
    }
    // kNodeStart at flow depth 0.
    if ((c == '-' || c == '?' || c == ':') && ends(i + 1)) {
      ++i;  // an indicator; a node still follows
      continue;
    }
    if (c == '&' || c == '!') {
      // Anchor or tag: a node still follows. Their names end at a space or flow indicator.
      ++i;
      while (i < text.size() && !ends(i) &&
             std::string_view(",[]{}").find(text[i]) == std::string_view::npos) {
        ++i;
      }
      continue;
    }
    if (c == '|' || c == '>') {
      block_pending = true;  // a block scalar if nothing but indicators follow on this line
      ++i;
      while (i < text.size() &&
             (text[i] == '-' || text[i] == '+' || (text[i] >= '1' && text[i] <= '9'))) {
        ++i;
      }
      continue;
    }
    if (c == '{' || c == '[') {
      ++depth;
      ++entries;
      ++i;
      continue;
    }
    if (c == '"' || c == '\'') {
      char quote = c;
      ++i;
      while (i < text.size()) {
        if (text[i] == '\n') {
          ++line;
        }
        if (quote == '"' && text[i] == '\\') {
          i += 2;
          continue;
        }
        if (text[i] == quote) {
          if (quote == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
            i += 2;
            continue;
          }
          break;
        }
        ++i;
      }
      ++i;
      state = State::kAfterNode;
      continue;
    }
    if (c == '*') {
      // An alias is a whole node.
      while (i < text.size() && !ends(i) &&
             std::string_view(",[]{}").find(text[i]) == std::string_view::npos) {
        ++i;
      }
      state = State::kAfterNode;
      continue;
    }
    state = State::kPlain;
    ++i;
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view kindName(Kind kind) {
  return infoFor(kind).name;
}

std::string ObjectRef::str() const {
  return key.ns.empty() ? text::cat(kindName(kind), " ", key.name)
                        : text::cat(kindName(kind), " ", key.ns, "/", key.name);
}

std::optional<Kind> kindFromName(std::string_view name) {
  for (const auto& k : kinds()) {
    if (k.name == name) {
      return k.kind;
    }
  }
  return std::nullopt;
}

std::optional<Decoded> refusedStandIn(Kind kind, const YAML::Node& node, std::string reason,
                                      const DecodeOptions& options) {
  if (kind != Kind::kAuthorizationPolicy && kind != Kind::kRateLimitPolicy) {
    return std::nullopt;
  }
  std::optional<ObjectRef> ref = peekRef(kind, node, options);
  if (!ref) {
    return std::nullopt;
  }
  if (kind == Kind::kRateLimitPolicy) {
    auto limit = internal::refusedRateLimitPolicy(node, ref->key, std::move(reason));
    return Decoded{*ref, "", std::move(*limit)};
  }
  auto policy = internal::refusedAuthorizationPolicy(node, ref->key, options, std::move(reason));
  if (!policy) {
    return std::nullopt;
  }
  return Decoded{*ref, "", std::move(*policy)};
}

absl::StatusOr<Decoded> decodeObject(const YAML::Node& node, const DecodeOptions& options) {
  auto kind_name = kindText(node);
  if (!kind_name.ok()) {
    return kind_name.status();
  }
  std::optional<Kind> kind = kindFromName(*kind_name);
  if (!kind) {
    return absl::InvalidArgumentError(text::cat("kind '", *kind_name, "' is not one Ferry reads"));
  }
  return decodeKnown(*kind, node, true, options);
}

absl::StatusOr<Decoded> decodeObjectAs(Kind kind, const YAML::Node& node,
                                       const DecodeOptions& options) {
  if (node.IsMap() && node["kind"]) {
    Field k = Field(node, "")["kind"];
    if (!k.node().IsScalar() || k.node().Scalar() != kindName(kind)) {
      return absl::InvalidArgumentError(
          text::cat("kind: expected ", kindName(kind), " in a ", kindName(kind), " list"));
    }
  }
  return decodeKnown(kind, node, false, options);
}

namespace {

// The YAML nodes of a JSON tree as yaml-cpp's parser reports them: one per scalar, sequence and
// mapping, and one per mapping key.
size_t jsonNodes(const nlohmann::json& j) {
  size_t n = 1;
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      n += 1 + jsonNodes(value);
    }
  } else if (j.is_array()) {
    for (const auto& value : j) {
      n += jsonNodes(value);
    }
  }
  return n;
}

// decodeObjectText past the text checks; `nodes` is the text's node count when known.
absl::StatusOr<Decoded> decodeCheckedText(std::string_view raw, std::optional<size_t> nodes,
                                          const DecodeOptions& options) {
  const std::string text = normalizeLineBreaks(raw);
  size_t flow_entries = 0;
  if (auto st = checkFlowCommas(text, &flow_entries); !st.ok()) {
    return absl::InvalidArgumentError(
        text::cat("not valid JSON or YAML: ", std::string(st.message())));
  }
  try {
    Budget budget;
    if (!budget.chargeFlowEntries(flow_entries) ||
        !(nodes ? budget.chargeNodes(*nodes) : budget.chargeText(text))) {
      return absl::InvalidArgumentError(text::cat("object refused: ", budget.over()));
    }
    return decodeObject(YAML::Load(text), options);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(text::cat("not valid JSON or YAML: ", e.what()));
  }
}

}  // namespace

absl::StatusOr<Decoded> decodeObjectText(std::string_view raw, const DecodeOptions& options) {
  return decodeCheckedText(raw, std::nullopt, options);
}

absl::StatusOr<Decoded> decodeJsonObject(const nlohmann::json& object,
                                         const DecodeOptions& options) {
  return decodeCheckedText(object.dump(), jsonNodes(object), options);
}

std::vector<DocumentResult> decodeDocuments(std::string_view raw, std::string_view source,
                                            const DecodeOptions& options) {
  const std::string normalized = normalizeLineBreaks(raw);
  const std::string_view text = normalized;
  std::vector<DocumentResult> out;
  std::vector<YAML::Node> docs;
  Budget budget;
  size_t flow_entries = 0;
  bool whole = checkFlowCommas(text, &flow_entries).ok();
  if (whole) {
    try {
      // The whole file is measured before any of it is built.
      if (!budget.chargeFlowEntries(flow_entries) || !budget.chargeText(normalized)) {
        return {refusal(source, budget)};
      }
      docs = YAML::LoadAll(normalized);
    } catch (const YAML::Exception&) {
      whole = false;
      budget = Budget();
    }
  }
  if (!whole) {
    // LoadAll is all-or-nothing; go document by document so the good ones around a broken one
    // still load.
    budget = Budget();
    size_t start = 0;
    size_t index = 0;
    while (start <= text.size()) {
      size_t sep = text.find("\n---", start);
      std::string_view chunk = text.substr(
          start, sep == std::string_view::npos ? std::string_view::npos : sep - start + 1);
      std::string where = text::cat(source, ", document ", ++index);
      size_t chunk_entries = 0;
      absl::Status shape = checkFlowCommas(chunk, &chunk_entries);
      if (!budget.chargeFlowEntries(chunk_entries)) {
        return {refusal(source, budget)};
      }
      try {
        if (!shape.ok()) {
          out.push_back({where, std::nullopt,
                         absl::InvalidArgumentError(text::cat(
                             where, ": not valid YAML: ", std::string(shape.message())))});
        } else {
          const std::string chunk_text(chunk);
          if (!budget.chargeText(chunk_text)) {
            return {refusal(source, budget)};
          }
          for (auto& d : YAML::LoadAll(chunk_text)) {
            if (d.IsDefined() && !d.IsNull()) {
              decodeInto(d, where, options, budget, out);
            }
            if (!budget.over().empty()) {
              return {refusal(source, budget)};
            }
          }
        }
      } catch (const YAML::Exception& e) {
        out.push_back({where, std::nullopt,
                       absl::InvalidArgumentError(
                           text::cat(where, ": not valid YAML: ", std::string(e.what())))});
      }
      if (sep == std::string_view::npos) {
        break;
      }
      size_t eol = text.find('\n', sep + 1);
      start = eol == std::string_view::npos ? text.size() + 1 : eol + 1;
    }
    return out;
  }
  size_t index = 0;
  for (const auto& doc : docs) {
    ++index;
    if (!doc.IsDefined() || doc.IsNull()) {
      continue;  // an empty document between separators
    }
    decodeInto(doc, text::cat(source, ", document ", index), options, budget, out);
    if (!budget.over().empty()) {
      return {refusal(source, budget)};
    }
  }
  return out;
}

}  // namespace ferry::k8s
