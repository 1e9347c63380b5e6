// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The budgets of one manifest file (decode.h: kMaxManifestNodes, kMaxManifestObjects), charged
// before and while it is decoded.

#include <cstddef>
#include <string>

namespace ferry::k8s::internal {

class Budget {
 public:
  // Charges the nodes of every document of `text`, aliases expanded, counted from yaml-cpp's
  // event stream before any node tree is built: a tree costs about 500 bytes a node (an 8 MiB
  // flat list grew to 2 GiB), and decoding copies an aliased subtree at every use. An alias is
  // charged its anchor's expanded size; one to a node still open (a cycle) is over budget.
  // Counting stops at the budget. Throws YAML::Exception where the text is not valid YAML.
  bool chargeText(const std::string& text);
  // Charges `nodes` counted by the caller on a parsed tree without aliases (JSON), the count
  // chargeText would reach on its text.
  bool chargeNodes(size_t nodes);
  // Entries of flow collections ([...], {...}, all of JSON), counted in the text: yaml-cpp
  // queues every token of a flow collection before its first event, so they are charged as
  // nodes before the parser sees them.
  bool chargeFlowEntries(size_t entries);
  // One object (a document or a List item).
  bool chargeObject();
  // Which budget ran out; empty while within both.
  const std::string& over() const { return over_; }

 private:
  void overNodes();

  size_t nodes_ = 0;
  size_t objects_ = 0;
  std::string over_;
};

}  // namespace ferry::k8s::internal
