// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>

// Tests tagged [privileged] need root (namespaces, cgroups, BPF). They never skip silently:
// run without root, they fail and say why. Exclude them explicitly with `ctest -LE privileged`.
#define FERRY_REQUIRE_ROOT()                                                              \
  do {                                                                                    \
    if (::geteuid() != 0) {                                                               \
      FAIL(                                                                               \
          "this [privileged] test needs root (network namespaces, cgroups, BPF); run as " \
          "root or exclude it with `ctest -LE privileged`");                              \
    }                                                                                     \
  } while (0)
