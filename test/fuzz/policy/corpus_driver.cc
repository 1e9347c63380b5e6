// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
// Runs LLVMFuzzerTestOneInput over every file of the seed corpus so that ctest checks the seeds
// in every build, without clang. An empty or missing corpus fails: a run of nothing must not pass.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
    return 2;
  }
  std::error_code ec;
  size_t ran = 0;
  for (const auto& entry : std::filesystem::directory_iterator(argv[1], ec)) {
    if (!entry.is_regular_file()) {
      continue;
    }
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ++ran;
  }
  if (ec || ran == 0) {
    std::fprintf(stderr, "no corpus inputs in %s %s\n", argv[1], ec.message().c_str());
    return 1;
  }
  std::printf("ran %zu corpus inputs\n", ran);
  return 0;
}
