// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "k8s/field.h"

#include <set>

#include <charconv>
#include "policy/text.h"

namespace ferry::k8s::internal {
namespace {

std::string typeName(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Null:
      return "null";
    default:
      return "nothing";
  }
}

std::string keyText(const YAML::Node& key) {
  return key.IsScalar() ? key.Scalar() : "<" + typeName(key) + " key>";
}

}  // namespace

void Field::fail(std::string_view reason) const {
  throw DecodeError(path_.empty() ? std::string(reason) : text::cat(path_, ": ", reason));
}

void Field::check(const absl::Status& status) const {
  if (!status.ok()) {
    fail(std::string(status.message()));
  }
}

Field Field::operator[](std::string_view key) const {
  std::string child_path = path_.empty() ? std::string(key) : text::cat(path_, ".", key);
  if (!node_.IsMap()) {
    return Field(YAML::Node(YAML::NodeType::Undefined), std::move(child_path));
  }
  for (const auto& kv : node_) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) {
      return Field(kv.second, std::move(child_path));
    }
  }
  return Field(YAML::Node(YAML::NodeType::Undefined), std::move(child_path));
}

void Field::expectMap() const {
  if (!node_.IsMap()) {
    fail(text::cat("expected a map, got ", typeName(node_)));
  }
}

void Field::allowOnly(std::initializer_list<std::string_view> allowed) const {
  expectMap();
  std::set<std::string> seen;
  for (const auto& kv : node_) {
    std::string key = keyText(kv.first);
    if (!kv.first.IsScalar()) {
      fail(text::cat("unexpected ", key));
    }
    if (!seen.insert(key).second) {
      fail(text::cat("duplicate field '", key, "'"));
    }
    bool known = false;
    for (auto a : allowed) {
      known = known || a == key;
    }
    if (!known) {
      std::string names;
      for (auto a : allowed) {
        names += names.empty() ? "" : ", ";
        names += a;
      }
      (*this)[key].fail(text::cat("unknown field (known here: ", names, ")"));
    }
  }
}

std::vector<Field> Field::list() const {
  std::vector<Field> out;
  if (!present()) {
    return out;
  }
  if (!node_.IsSequence()) {
    fail(text::cat("expected a list, got ", typeName(node_)));
  }
  size_t i = 0;
  for (const auto& item : node_) {
    out.emplace_back(item, text::cat(path_, "[", i++, "]"));
  }
  return out;
}

std::string Field::str() const {
  if (!node_.IsScalar()) {
    fail(text::cat("expected a string, got ", typeName(node_)));
  }
  return node_.Scalar();
}

std::string Field::nonEmptyStr() const {
  if (!present()) {
    fail("required field is missing");
  }
  std::string s = str();
  if (s.empty()) {
    fail("must not be empty");
  }
  return s;
}

std::vector<std::string> Field::strList() const {
  std::vector<std::string> out;
  if (!present()) {
    return out;
  }
  if (!node_.IsSequence()) {
    fail(text::cat("expected a list of strings, got ", typeName(node_)));
  }
  size_t i = 0;
  for (const auto& item : node_) {
    if (!item.IsScalar()) {
      fail(text::cat("expected a list of strings, item ", i, " is ", typeName(item)));
    }
    out.push_back(item.Scalar());
    ++i;
  }
  return out;
}

std::map<std::string, std::string> Field::strMap() const {
  std::map<std::string, std::string> out;
  if (!present()) {
    return out;
  }
  if (!node_.IsMap()) {
    fail(text::cat("expected a map of strings, got ", typeName(node_)));
  }
  for (const auto& kv : node_) {
    std::string key = keyText(kv.first);
    if (!kv.first.IsScalar() || !(kv.second.IsScalar() || kv.second.IsNull())) {
      fail(text::cat("expected a map of strings, '", key, "' is ", typeName(kv.second)));
    }
    // `key:` with nothing after it is an empty string label value, as Kubernetes reads it.
    std::string value = kv.second.IsNull() ? "" : kv.second.Scalar();
    if (!out.emplace(key, value).second) {
      fail(text::cat("duplicate key '", key, "'"));
    }
  }
  return out;
}

int64_t Field::integer(int64_t min, int64_t max) const {
  // A quoted "80" is a string in JSON and YAML; Kubernetes refuses it where an integer goes.
  if (!node_.IsScalar() || node_.Tag() == "!") {
    fail(text::cat("expected an integer, got ",
                   node_.IsScalar() ? "a quoted string" : typeName(node_)));
  }
  int64_t v = 0;
  const std::string& s = node_.Scalar();
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
    fail(text::cat("expected an integer, got '", s, "'"));
  }
  if (v < min || v > max) {
    fail(text::cat(v, " is out of range (", min, " to ", max, ")"));
  }
  return v;
}

bool Field::boolean() const {
  if (node_.IsScalar() && node_.Tag() != "!") {
    if (node_.Scalar() == "true") {
      return true;
    }
    if (node_.Scalar() == "false") {
      return false;
    }
  }
  fail("expected true or false");
}

}  // namespace ferry::k8s::internal
