# Builds BPF programs and their libbpf skeletons.
#
#   ferry_bpf_skeleton(<name> SOURCE <file.bpf.c> [DEPENDS <headers>...])
#
# compiles <file.bpf.c> with clang -target bpf into <name>.bpf.o, runs
# `bpftool gen skeleton` to produce <name>.skel.h, and defines the INTERFACE target
# <name>_skel that puts the skeleton on the include path and links libbpf.
# vmlinux.h comes from the running kernel's BTF (/sys/kernel/btf/vmlinux) when present,
# otherwise from the committed bpf/include/vmlinux.h.

find_program(FERRY_CLANG clang REQUIRED)
find_program(FERRY_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

set(FERRY_BPF_GEN_DIR ${CMAKE_BINARY_DIR}/bpf-gen)
file(MAKE_DIRECTORY ${FERRY_BPF_GEN_DIR})

if(EXISTS /sys/kernel/btf/vmlinux)
  add_custom_command(
    OUTPUT ${FERRY_BPF_GEN_DIR}/vmlinux.h
    COMMAND ${FERRY_BPFTOOL} btf dump file /sys/kernel/btf/vmlinux format c
            > ${FERRY_BPF_GEN_DIR}/vmlinux.h
    COMMENT "Generating vmlinux.h from the running kernel's BTF")
else()
  add_custom_command(
    OUTPUT ${FERRY_BPF_GEN_DIR}/vmlinux.h
    COMMAND ${CMAKE_COMMAND} -E copy ${CMAKE_SOURCE_DIR}/bpf/include/vmlinux.h
            ${FERRY_BPF_GEN_DIR}/vmlinux.h
    COMMENT "No kernel BTF here: using the committed vmlinux.h")
endif()
add_custom_target(ferry_vmlinux_h DEPENDS ${FERRY_BPF_GEN_DIR}/vmlinux.h)

# The BPF target architecture macro libbpf's bpf_tracing.h wants.
string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" _ferry_arch)
if(_ferry_arch MATCHES "x86_64|amd64")
  set(FERRY_BPF_ARCH x86)
elseif(_ferry_arch MATCHES "aarch64|arm64")
  set(FERRY_BPF_ARCH arm64)
else()
  set(FERRY_BPF_ARCH ${_ferry_arch})
endif()

function(ferry_bpf_skeleton name)
  cmake_parse_arguments(ARG "" "SOURCE" "DEPENDS" ${ARGN})
  get_filename_component(src ${ARG_SOURCE} ABSOLUTE)
  set(obj ${FERRY_BPF_GEN_DIR}/${name}.bpf.o)
  set(skel ${FERRY_BPF_GEN_DIR}/${name}.skel.h)
  file(GLOB _bpf_headers ${CMAKE_SOURCE_DIR}/bpf/include/*.h ${CMAKE_SOURCE_DIR}/bpf/lib/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${FERRY_CLANG} -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_${FERRY_BPF_ARCH}
            -I${FERRY_BPF_GEN_DIR} -I${CMAKE_SOURCE_DIR}/bpf/include -I${CMAKE_SOURCE_DIR}/bpf
            -c ${src} -o ${obj}
    DEPENDS ${src} ${_bpf_headers} ${ARG_DEPENDS} ferry_vmlinux_h ${FERRY_BPF_GEN_DIR}/vmlinux.h
    COMMENT "BPF ${name}: clang -target bpf")
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${FERRY_BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "BPF ${name}: bpftool gen skeleton")
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${FERRY_BPF_GEN_DIR}
                                                    ${CMAKE_SOURCE_DIR}/bpf/include)
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
endfunction()
