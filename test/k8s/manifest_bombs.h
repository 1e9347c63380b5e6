// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Manifests that expand far beyond their size through YAML aliases (issue 16), shared by the
// malformed-manifest tables and the controller memory test.

#include <string>

namespace ferry::k8s::testing {

// The 960-byte shape that grew ferry-controller to 1.9 GiB (issue 16): `kind: List` items that
// are Lists of aliases, ten uses per level, nine levels: 10^9 Namespaces once expanded.
inline std::string listBomb() {
  std::string text =
      "apiVersion: v1\nkind: List\nitems:\n"
      "- &l0 {apiVersion: v1, kind: Namespace, metadata: {name: x}}\n";
  for (int level = 1; level <= 9; ++level) {
    const std::string prev = "*l" + std::to_string(level - 1);
    text += "- &l" + std::to_string(level) + " {apiVersion: v1, kind: List, items: [";
    for (int i = 0; i < 10; ++i) {
      text += (i ? ", " : "") + prev;
    }
    text += "]}\n";
  }
  return text;
}

// Billion laughs inside one object: spec.rules nested lists of aliases, anchors defined in
// place (each level: the previous one, then nine aliases of it).
inline std::string policyBomb() {
  std::string rules = "&a0 {to: [{operation: {paths: [/a]}}]}";
  for (int level = 1; level <= 9; ++level) {
    const std::string prev = "*a" + std::to_string(level - 1);
    std::string next = "&a" + std::to_string(level) + " [" + rules;
    for (int i = 1; i < 10; ++i) {
      next += ", " + prev;
    }
    rules = next + "]";
  }
  return "apiVersion: security.ferry.dev/v1alpha1\nkind: AuthorizationPolicy\n"
         "metadata: {name: bomb, namespace: demo}\nspec:\n  action: DENY\n  rules: " +
         rules + "\n";
}

inline std::string manyObjects(size_t n) {
  std::string text =
      "apiVersion: v1\nkind: List\nitems:\n"
      "- &ns {apiVersion: v1, kind: Namespace, metadata: {name: x}}\n";
  for (size_t i = 1; i < n; ++i) {
    text += "- *ns\n";
  }
  return text;
}

// No alias at all: a flow list of `n` one-character scalars, 2 bytes a node (yaml-cpp's tree
// costs about 500 bytes a node).
inline std::string flatList(size_t n) {
  std::string text = "[";
  for (size_t i = 0; i < n; ++i) {
    text += i ? ",1" : "1";
  }
  return text + "]\n";
}

inline std::string blockList(size_t n) {
  std::string text;
  for (size_t i = 0; i < n; ++i) {
    text += "- 1\n";
  }
  return text;
}

}  // namespace ferry::k8s::testing
