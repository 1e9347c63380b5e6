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

function(ferry_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ferry_test_main ${ARG_LIBS})
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
