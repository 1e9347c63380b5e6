# Catch2 tests registered with ctest.
#
#   ferry_test(<name> SOURCES <files>... [LIBS <targets>...] [LABELS <labels>...]
#              [TIMEOUT <seconds>])
#
# Every test case becomes its own ctest entry through catch_discover_tests (so test names must
# not contain `;`, which CMake would split). Tests that need
# root, BPF or namespaces carry the Catch tag [privileged] and the ctest label `privileged`;
# they fail with a clear message (never skip silently) when not run as root.
include(Catch)

add_library(ferry_test_main STATIC ${CMAKE_SOURCE_DIR}/test/main.cc)
target_link_libraries(ferry_test_main PUBLIC Catch2::Catch2)
target_include_directories(ferry_test_main PUBLIC ${CMAKE_SOURCE_DIR}/test)

# The headers nearly every test file includes (Catch2's single header, nlohmann/json, Abseil's
# strings and status) cost 4-6 s to parse per file: they are precompiled once and every test
# reuses them (all targets share the build's flags, as a precompiled header needs).
add_library(ferry_test_pch STATIC ${CMAKE_SOURCE_DIR}/test/pch.cc)
target_link_libraries(ferry_test_pch PRIVATE Catch2::Catch2 nlohmann_json::nlohmann_json
                                             absl::strings absl::status absl::statusor)
# A precompiled header is refused (-Winvalid-pch) by a file compiled with other
# macros: gRPC's and protobuf's targets give their users -pthread (_REENTRANT) and NOMINMAX, so
# the header and every test get both.
# If a test's precompiled header is still refused (a compiler or flag change this file does not
# know), the warning says so and the file is compiled from the headers themselves: slower, never
# a failed build (-Werror would make it one).
set(FERRY_TEST_PCH_MATCH -pthread -DNOMINMAX -Wno-error=invalid-pch)
target_compile_options(ferry_test_pch PRIVATE ${FERRY_TEST_PCH_MATCH})
target_precompile_headers(ferry_test_pch PRIVATE
  <catch2/catch.hpp> <nlohmann/json.hpp> <absl/strings/str_cat.h> <absl/status/statusor.h>
  <filesystem> <fstream> <map> <string> <thread> <vector>)

function(ferry_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ferry_test_main ${ARG_LIBS})
  target_compile_options(${name} PRIVATE ${FERRY_TEST_PCH_MATCH})
  target_precompile_headers(${name} REUSE_FROM ferry_test_pch)
  set(props "")
  if(ARG_LABELS)
    list(APPEND props LABELS "${ARG_LABELS}")
  endif()
  if(ARG_TIMEOUT)
    list(APPEND props TIMEOUT ${ARG_TIMEOUT})
  endif()
  if(props)
    list(PREPEND props PROPERTIES)
  endif()
  # --warn NoTests: a test name that matches nothing fails instead of passing empty.
  catch_discover_tests(${name} TEST_PREFIX "${name}: " EXTRA_ARGS --warn NoTests ${props})
endfunction()
