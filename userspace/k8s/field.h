// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Internal to the decoders: a YAML node together with its field path, with typed accessors
// that throw DecodeError("<path>: <reason>") on anything unexpected. Decoding is control-plane
// work; the exception never leaves the library (decodeObject turns it into a Status).

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace ferry::k8s::internal {

class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Field {
 public:
  Field(YAML::Node node, std::string path) : node_(std::move(node)), path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  const YAML::Node& node() const { return node_; }
  // Kubernetes treats an explicit null like an absent field.
  bool present() const { return node_.IsDefined() && !node_.IsNull(); }

  // A child of a map (call expectMap or allowOnly first).
  Field operator[](std::string_view key) const;
  void expectMap() const;
  // Expects a map whose keys are all in `allowed` and unique.
  void allowOnly(std::initializer_list<std::string_view> allowed) const;
  std::vector<Field> list() const;  // "expected a list"

  std::string str() const;  // any scalar
  std::string nonEmptyStr() const;
  std::vector<std::string> strList() const;  // "expected a list of strings"
  std::map<std::string, std::string> strMap() const;
  int64_t integer(int64_t min, int64_t max) const;  // plain (unquoted) integer scalars only
  bool boolean() const;

  // Helpers for optional fields: the default when absent.
  std::string strOr(std::string fallback) const { return present() ? str() : fallback; }

  [[noreturn]] void fail(std::string_view reason) const;
  // Fails with the status message when `status` is not ok.
  void check(const absl::Status& status) const;

 private:
  YAML::Node node_;
  std::string path_;
};

}  // namespace ferry::k8s::internal
