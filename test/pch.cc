// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// The one source of ferry_test_pch, whose precompiled headers every test reuses
// (cmake/FerryTest.cmake). It has nothing of its own.
