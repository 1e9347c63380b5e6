# Third-party libraries, all from Debian packages (scripts/setup.sh installs them).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(absl REQUIRED)
find_package(Catch2 REQUIRED)
find_package(prometheus-cpp REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
pkg_check_modules(LIBBPF REQUIRED IMPORTED_TARGET libbpf)
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)
find_package(CURL REQUIRED)  # userspace/kube: the Kubernetes API client
# RE2 (linear-time regular expressions, as Envoy uses) for HTTPRoute RegularExpression matches.
pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)
# gRPC + protobuf (controller <-> agent distribution protocol)
pkg_check_modules(GRPCPP REQUIRED IMPORTED_TARGET grpc++)
pkg_check_modules(PROTOBUF REQUIRED IMPORTED_TARGET protobuf)
find_program(FERRY_PROTOC protoc REQUIRED)
find_program(FERRY_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
