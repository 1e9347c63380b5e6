# Builds BPF programs and their libbpf skeletons.
#
#   ferry_bpf_skeleton(<name> SOURCE <file.bpf.c> [DEPENDS <headers>...])
#
# compiles <file.bpf.c> with clang -target bpf into <name>.bpf.o, links it with
# `bpftool gen object` into <name>.linked.bpf.o (the BPF static linker keeps the programs, maps,
# BTF and CO-RE relocations and drops the DWARF that -g also emits: sockops 694 -> 40 KiB, bytes
# the agent binary carries in the skeleton), runs `bpftool gen skeleton` on that to produce
# <name>.skel.h, and defines the INTERFACE target
# <name>_skel that puts the skeleton on the include path and links libbpf.
# vmlinux.h comes from FERRY_VMLINUX_H when set (a header dumped with `bpftool btf dump file
# /sys/kernel/btf/vmlinux format c` on a kernel with BTF), otherwise from the running kernel's
# BTF; with neither, configuring stops with that advice.

find_program(FERRY_CLANG clang REQUIRED)
find_program(FERRY_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

set(FERRY_BPF_GEN_DIR ${CMAKE_BINARY_DIR}/bpf-gen)
file(MAKE_DIRECTORY ${FERRY_BPF_GEN_DIR})

set(FERRY_VMLINUX_H "" CACHE FILEPATH "vmlinux.h to build the BPF programs with (default: dump the running kernel's BTF)")
if(FERRY_VMLINUX_H)
  if(NOT EXISTS ${FERRY_VMLINUX_H})
    message(FATAL_ERROR "FERRY_VMLINUX_H=${FERRY_VMLINUX_H} does not exist")
  endif()
  add_custom_command(
    OUTPUT ${FERRY_BPF_GEN_DIR}/vmlinux.h
    COMMAND ${CMAKE_COMMAND} -E copy ${FERRY_VMLINUX_H} ${FERRY_BPF_GEN_DIR}/vmlinux.h
    DEPENDS ${FERRY_VMLINUX_H}
    COMMENT "Using vmlinux.h from FERRY_VMLINUX_H")
elseif(EXISTS /sys/kernel/btf/vmlinux)
  add_custom_command(
    OUTPUT ${FERRY_BPF_GEN_DIR}/vmlinux.h
    COMMAND ${FERRY_BPFTOOL} btf dump file /sys/kernel/btf/vmlinux format c
            > ${FERRY_BPF_GEN_DIR}/vmlinux.h
    COMMENT "Generating vmlinux.h from the running kernel's BTF")
else()
  message(FATAL_ERROR
    "The BPF programs need the kernel's type information and this machine's kernel has no BTF "
    "(/sys/kernel/btf/vmlinux is missing; it needs CONFIG_DEBUG_INFO_BTF=y). Build on a kernel "
    "with BTF, or dump vmlinux.h on one with "
    "`bpftool btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h` and configure with "
    "-DFERRY_VMLINUX_H=/path/to/vmlinux.h.")
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
  set(linked ${FERRY_BPF_GEN_DIR}/${name}.linked.bpf.o)
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
    OUTPUT ${linked}
    COMMAND ${FERRY_BPFTOOL} gen object ${linked} ${obj}
    DEPENDS ${obj}
    COMMENT "BPF ${name}: bpftool gen object")
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${FERRY_BPFTOOL} gen skeleton ${linked} name ${name} > ${skel}
    DEPENDS ${linked}
    COMMENT "BPF ${name}: bpftool gen skeleton")
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${FERRY_BPF_GEN_DIR}
                                                    ${CMAKE_SOURCE_DIR}/bpf/include)
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
endfunction()
