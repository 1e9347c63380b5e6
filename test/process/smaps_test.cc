// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#include "process/smaps.h"

#include <string>

#include <catch2/catch.hpp>

namespace ferry::process {
namespace {

TEST_CASE("parseSmaps reads each mapping's range, permissions, file and counters", "[process]") {
  const std::string text =
      "55d0c0000000-55d0c0100000 r-xp 00000000 08:01 123    /usr/lib/libcrypto.so.3\n"
      "Size:               1024 kB\nRss:                 600 kB\nAnonymous:             0 kB\n"
      "7f0000000000-7f0000001000 r--p 00002000 08:01 77 /opt/my agent (deleted)\n"
      "Rss:                   4 kB\nAnonymous:             4 kB\nVmFlags: rd mr mw me\n"
      "7f0000100000-7f0000200000 rw-p 00000000 00:00 0 \n"
      "Rss:                  40 kB\nAnonymous:            40 kB\n"
      "7f0000200000-7f0000300000 rw-p 00000000 00:00 0          [heap]\n"
      "7fff00000000-7fff00002000 r-xp 00000000 00:00 0 [vdso]\n"
      "7fff00010000-7fff00020000 r--s 00000000 00:0e 4242 anon_inode:bpf-map\n";
  auto parsed = parseSmaps(text);
  REQUIRE(parsed.ok());
  const std::vector<SmapsMapping>& m = *parsed;
  REQUIRE(m.size() == 6);
  CHECK(m[0].start == 0x55d0c0000000);
  CHECK(m[0].end == 0x55d0c0100000);
  CHECK(m[0].perms == "r-xp");
  CHECK(m[0].inode == 123);
  CHECK(m[0].path == "/usr/lib/libcrypto.so.3");
  CHECK(m[0].rss_kib == 600);
  CHECK(m[0].anonymous_kib == 0);
  CHECK(m[1].path == "/opt/my agent (deleted)");
  CHECK(m[1].anonymous_kib == 4);
  CHECK(m[2].path.empty());
  CHECK(m[2].rss_kib == 40);
  CHECK(m[3].path == "[heap]");
  CHECK(m[3].rss_kib == 0);

  // Code and constants of files only: not written data, the vDSO or a shared BPF map.
  CHECK(m[0].privateReadOnlyFile());
  CHECK(m[1].privateReadOnlyFile());  // its written page is the caller's to see
  CHECK_FALSE(m[2].privateReadOnlyFile());
  CHECK_FALSE(m[3].privateReadOnlyFile());
  CHECK_FALSE(m[4].privateReadOnlyFile());
  CHECK_FALSE(m[5].privateReadOnlyFile());
}

TEST_CASE("parseSmaps refuses text that is not smaps", "[process]") {
  CHECK_FALSE(parseSmaps("").ok());
  CHECK_FALSE(parseSmaps("Name:\tferry-agent\nVmRSS:\t 100 kB\n").ok());
  CHECK_FALSE(parseSmaps("zzzz-55d0c0100000 r-xp 00000000 08:01 123 /x\n").ok());
  CHECK_FALSE(parseSmaps("55d0c0000000-55d0c0100000 r-xp\n").ok());
}

TEST_CASE("readSmaps reads this process's own mappings", "[process]") {
  auto own = readSmaps();
  REQUIRE(own.ok());
  // The test binary's code is among them, resident while it runs.
  bool code_of_a_file = false;
  for (const SmapsMapping& m : *own) {
    code_of_a_file |= m.perms == "r-xp" && m.privateReadOnlyFile() && m.rss_kib > 0;
  }
  CHECK(code_of_a_file);
  CHECK_FALSE(readSmaps(-1).ok());
}

}  // namespace
}  // namespace ferry::process
