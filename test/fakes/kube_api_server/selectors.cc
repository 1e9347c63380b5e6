// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "fakes/kube_api_server/selectors.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ferry::fakes {
namespace {

using nlohmann::json;

// Field labels each kind supports besides metadata.name and metadata.namespace (from the
// kinds' field label conversion functions in kube-apiserver).
std::vector<std::string> extraFields(const kube::Resource& r) {
  if (r.kind == "Pod") {
    return {
        "spec.nodeName",    "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase",       "status.podIP",       "status.nominatedNodeName"};
  }
  if (r.kind == "Secret") {
    return {"type"};
  }
  if (r.kind == "Namespace") {
    return {"status.phase"};
  }
  return {};
}

// Splits on commas outside parentheses.
std::vector<std::string> splitTerms(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  for (char c : s) {
    if (c == '(') {
      ++depth;
    } else if (c == ')') {
      --depth;
    }
    if (c == ',' && depth == 0) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty() || !out.empty()) {
    out.push_back(cur);
  }
  return out;
}

std::string fieldValue(const json& object, const std::string& path) {
  const json* cur = &object;
  for (absl::string_view part : absl::StrSplit(path, '.')) {
    if (!cur->is_object() || !cur->contains(std::string(part))) {
      return "";
    }
    cur = &(*cur)[std::string(part)];
  }
  if (cur->is_string()) {
    return cur->get<std::string>();
  }
  return cur->is_null() ? "" : cur->dump();
}

}  // namespace

absl::StatusOr<Selector> Selector::parse(const std::string& label_selector,
                                         const std::string& field_selector,
                                         const kube::Resource& resource) {
  Selector sel;
  for (std::string term : splitTerms(label_selector)) {
    term = std::string(absl::StripAsciiWhitespace(term));
    auto bad = [&] {
      return absl::InvalidArgumentError(
          absl::StrCat("unable to parse requirement: invalid label selector \"", term, "\""));
    };
    if (term.empty()) {
      return bad();
    }
    Requirement req;
    const size_t space = term.find(' ');
    size_t op_at;
    if (space != std::string::npos && term.find_first_of("=!") > space) {
      // "key in (a,b)" / "key notin (a)"
      req.key = term.substr(0, space);
      const std::string tail = term.substr(space);
      absl::string_view rest = absl::StripAsciiWhitespace(tail);
      if (absl::ConsumePrefix(&rest, "notin")) {
        req.op = Op::kNotIn;
      } else if (absl::ConsumePrefix(&rest, "in")) {
        req.op = Op::kIn;
      } else {
        return bad();
      }
      rest = absl::StripAsciiWhitespace(rest);
      if (rest.size() < 2 || rest.front() != '(' || rest.back() != ')') {
        return bad();
      }
      for (absl::string_view v : absl::StrSplit(rest.substr(1, rest.size() - 2), ',')) {
        req.values.emplace_back(absl::StripAsciiWhitespace(v));
      }
    } else if ((op_at = term.find("!=")) != std::string::npos) {
      req = {term.substr(0, op_at), Op::kNotEq, {term.substr(op_at + 2)}};
    } else if ((op_at = term.find("==")) != std::string::npos) {
      req = {term.substr(0, op_at), Op::kEq, {term.substr(op_at + 2)}};
    } else if ((op_at = term.find('=')) != std::string::npos) {
      req = {term.substr(0, op_at), Op::kEq, {term.substr(op_at + 1)}};
    } else if (term[0] == '!') {
      req = {term.substr(1), Op::kNotExists, {}};
    } else {
      req = {term, Op::kExists, {}};
    }
    req.key = std::string(absl::StripAsciiWhitespace(req.key));
    for (auto& v : req.values) {
      v = std::string(absl::StripAsciiWhitespace(v));
    }
    if (req.key.empty() || req.key.find_first_of(" ()=!") != std::string::npos) {
      return bad();
    }
    sel.labels_.push_back(std::move(req));
  }
  const std::vector<std::string> extra = extraFields(resource);
  for (const std::string& raw : splitTerms(field_selector)) {
    const std::string term(absl::StripAsciiWhitespace(raw));
    Requirement req;
    size_t op_at;
    if ((op_at = term.find("!=")) != std::string::npos) {
      req = {term.substr(0, op_at), Op::kNotEq, {term.substr(op_at + 2)}};
    } else if ((op_at = term.find("==")) != std::string::npos) {
      req = {term.substr(0, op_at), Op::kEq, {term.substr(op_at + 2)}};
    } else if ((op_at = term.find('=')) != std::string::npos) {
      req = {term.substr(0, op_at), Op::kEq, {term.substr(op_at + 1)}};
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid selector: '", field_selector, "'; can't understand '", term, "'"));
    }
    if (req.key != "metadata.name" && req.key != "metadata.namespace" &&
        std::find(extra.begin(), extra.end(), req.key) == extra.end()) {
      return absl::InvalidArgumentError(absl::StrCat("field label not supported: ", req.key));
    }
    sel.fields_.push_back(std::move(req));
  }
  return sel;
}

bool Selector::matches(const json& object) const {
  const json labels = object.contains("metadata") && object["metadata"].is_object()
                          ? object["metadata"].value("labels", json::object())
                          : json::object();
  for (const Requirement& r : labels_) {
    const bool has = labels.is_object() && labels.contains(r.key) && labels[r.key].is_string();
    const std::string v = has ? labels[r.key].get<std::string>() : "";
    const bool listed = std::find(r.values.begin(), r.values.end(), v) != r.values.end();
    bool ok = false;
    switch (r.op) {
      case Op::kEq:
      case Op::kIn:
        ok = has && listed;
        break;
      case Op::kNotEq:
      case Op::kNotIn:
        ok = !has || !listed;
        break;
      case Op::kExists:
        ok = has;
        break;
      case Op::kNotExists:
        ok = !has;
        break;
    }
    if (!ok) {
      return false;
    }
  }
  for (const Requirement& r : fields_) {
    const bool equal = fieldValue(object, r.key) == r.values[0];
    if (equal != (r.op == Op::kEq)) {
      return false;
    }
  }
  return true;
}

}  // namespace ferry::fakes
