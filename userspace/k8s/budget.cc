// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "k8s/budget.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include <map>
#include <sstream>
#include <vector>

#include "k8s/decode.h"
#include "policy/text.h"

namespace ferry::k8s::internal {
namespace {

struct OverBudget {};

// Counts nodes from parser events; throws OverBudget past the budget.
class NodeCounter : public YAML::EventHandler {
 public:
  explicit NodeCounter(size_t spent) : nodes_(spent) {}
  size_t nodes() const { return nodes_; }

  void OnDocumentStart(const YAML::Mark&) override { sizes_.clear(); }  // anchors are per document
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t anchor) override { leaf(anchor); }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                const std::string&) override {
    leaf(anchor);
  }
  void OnAlias(const YAML::Mark&, YAML::anchor_t anchor) override {
    auto it = sizes_.find(anchor);
    charge(it == sizes_.end() ? kMaxManifestNodes + 1 : it->second);
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  void charge(size_t n) {
    nodes_ += n;
    if (nodes_ > kMaxManifestNodes) {
      throw OverBudget{};
    }
  }
  void leaf(YAML::anchor_t anchor) {
    charge(1);
    if (anchor != YAML::NullAnchor) {
      sizes_[anchor] = 1;
    }
  }
  void open(YAML::anchor_t anchor) {
    open_.push_back({anchor, nodes_});
    charge(1);
  }
  void close() {
    const auto [anchor, start] = open_.back();
    open_.pop_back();
    if (anchor != YAML::NullAnchor) {
      sizes_[anchor] = nodes_ - start;  // the expanded size, nested aliases included
    }
  }

  size_t nodes_;
  std::map<YAML::anchor_t, size_t> sizes_;  // expanded size of each finished anchored node
  std::vector<std::pair<YAML::anchor_t, size_t>> open_;
};

}  // namespace

bool Budget::chargeText(const std::string& text) {
  if (!over_.empty()) {
    return false;
  }
  std::istringstream in(text);
  YAML::Parser parser(in);
  NodeCounter counter(nodes_);
  try {
    while (parser.HandleNextDocument(counter)) {
    }
    nodes_ = counter.nodes();
  } catch (const OverBudget&) {
    overNodes();
  }
  return over_.empty();
}

bool Budget::chargeNodes(size_t nodes) {
  if (!over_.empty()) {
    return false;
  }
  nodes_ += nodes;
  if (nodes_ > kMaxManifestNodes) {
    overNodes();
  }
  return over_.empty();
}

void Budget::overNodes() {
  over_ = text::cat("more than ", kMaxManifestNodes,
                    " YAML nodes (an alias counts its whole subtree every time it is used)");
}

bool Budget::chargeFlowEntries(size_t entries) {
  if (over_.empty() && entries > kMaxManifestNodes) {
    over_ = text::cat("more than ", kMaxManifestNodes,
                      " entries in flow collections ([...], {...}, JSON)");
  }
  return over_.empty();
}

bool Budget::chargeObject() {
  if (over_.empty() && ++objects_ > kMaxManifestObjects) {
    over_ = text::cat("more than ", kMaxManifestObjects, " objects (documents and List items)");
  }
  return over_.empty();
}

}  // namespace ferry::k8s::internal
