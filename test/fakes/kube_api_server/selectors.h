// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Label and field selectors as list and watch take them (?labelSelector=, ?fieldSelector=),
// with the real server's grammar: labels "a=b,c!=d,e in (f,g),h notin (i),j,!k"; fields
// "metadata.name=x,spec.nodeName!=y" over the fields each kind supports.

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kube/resource.h"

namespace ferry::fakes {

class Selector {
 public:
  // An empty selector matches everything. Errors are the server's 400 messages.
  static absl::StatusOr<Selector> parse(const std::string& label_selector,
                                        const std::string& field_selector,
                                        const kube::Resource& resource);
  bool matches(const nlohmann::json& object) const;
  bool empty() const { return labels_.empty() && fields_.empty(); }

 private:
  enum class Op { kEq, kNotEq, kIn, kNotIn, kExists, kNotExists };
  struct Requirement {
    std::string key;
    Op op;
    std::vector<std::string> values;
  };
  std::vector<Requirement> labels_;
  std::vector<Requirement> fields_;  // key is a JSON path: "spec.nodeName"
};

}  // namespace ferry::fakes
