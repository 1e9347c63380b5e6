#!/usr/bin/env python3
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
"""Which of ferry-agent's code runs at start-up and idle, as a linker script that puts it first.

  text_order.py pages BINARY PID [PID...]
      Prints the link-time address of each page of BINARY's code resident in any process PID.
  text_order.py script MAP IDLE_PAGES TRAFFIC_PAGES [PREVIOUS]
      Prints agent/warm_text.ld: the .text input sections of the link map MAP that the pages
      (written by `pages` for agents linked with that map's layout) show were run, with those
      the script PREVIOUS already placed, in an output section `.text.warm` before `.text`:
      first what ran while an agent started and idled (IDLE_PAGES), then what else ran for
      traffic (TRAFFIC_PAGES), each in link order.

bench/text-order/run.sh drives both; its README says why.
"""
import os
import re
import struct
import sys

PAGE = 4096
TIERS = ("idle", "traffic")


def resident_pages(binary, pids):
    pages = set()
    for pid in pids:
        pages |= resident_pages_of(pid, binary)
    for page in sorted(pages):
        print(hex(page))


def resident_pages_of(pid, binary):
    binary = os.path.realpath(binary)
    pages = set()
    maps = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 6 and os.path.realpath(fields[5]) == binary:
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                maps.append((lo, hi, fields[1], int(fields[2], 16)))
    if not maps:
        sys.exit(f"text_order.py: {binary} is not mapped by process {pid}")
    # A PIE's first segment has link-time address 0: its start is the load base.
    base = min(lo for lo, _, _, offset in maps if offset == 0)
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for lo, hi, perm, _ in maps:
            if "x" not in perm:
                continue
            count = (hi - lo) // PAGE
            pagemap.seek(lo // PAGE * 8)
            entries = pagemap.read(count * 8)
            for i in range(count):
                (entry,) = struct.unpack_from("<Q", entries, i * 8)
                if entry >> 63:  # present
                    pages.add(lo + i * PAGE - base)
    return pages


def text_sections(map_path):
    """(section, address, size, file) of each input section of the output sections .text*."""
    sections, inside, pending = [], False, None
    with open(map_path) as f:
        for line in f:
            if re.match(r"^\.text(\.warm)?\s", line):
                inside = True
                continue
            if re.match(r"^\S", line):
                inside = False
            if not inside:
                continue
            whole = re.match(r"^ (\.text\S*)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$", line)
            if whole:
                sections.append((whole[1], int(whole[2], 16), int(whole[3], 16), whole[4].strip()))
                pending = None
                continue
            named = re.match(r"^ (\.text\S*)\s*$", line)
            if named:
                pending = named[1]
                continue
            placed = re.match(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$", line)
            if placed and pending:
                sections.append((pending, int(placed[1], 16), int(placed[2], 16), placed[3].strip()))
            pending = None
    return sections


def ran(address, size, pages):
    """A section ran if a resident page lies inside it. A page it shares with a neighbour
    counts only for a section of at most two pages: a large object file whose first or last
    page is resident for its neighbour's sake stays out (unless no neighbour explains the page:
    script())."""
    first, last = address // PAGE, (address + size - 1) // PAGE
    for page in range(first, last + 1):
        if page in pages and page * PAGE >= address and (page + 1) * PAGE <= address + size:
            return True
    return last - first <= 1 and (first in pages or last in pages)


def pattern(section, path):
    member = re.match(r"^(?:.*/)?([^/(]+\.a)\((.+)\)$", path)
    if member:
        return f"*{member[1]}:{member[2]}({section})"
    return f"*/{os.path.basename(path)}({section})"


def warm_sections(sections, pages, kept):
    """The sections PAGES shows ran, with those named in KEPT, as a set."""
    warm = {s for s in sections if ran(s[1], s[2], pages) or pattern(s[0], s[3]) in kept}
    # A resident page no kept section explains ran code of one of the sections on it: keep them all.
    for page in pages:
        on_page = [s for s in sections if s[1] < (page + 1) * PAGE and s[1] + s[2] > page * PAGE]
        if not any(s in warm for s in on_page):
            warm.update(on_page)
    return warm


def read_pages(name):
    with open(name) as f:
        return {int(line, 16) // PAGE for line in f if line.strip()}


def read_tiers(name):
    """The patterns of each tier of a script this tool wrote."""
    tiers = {TIERS[0]: set(), TIERS[1]: set()}
    tier = None
    with open(name) as f:
        for line in f:
            if line.strip() in (f"/* {t} */" for t in TIERS):
                tier = line.strip()[3:-3]
            elif line.startswith("    *") and tier:
                tiers[tier].add(line.strip())
    return tiers


def script(map_path, idle_pages, traffic_pages, previous=None):
    sections = [s for s in text_sections(map_path) if s[2] > 0]
    if not sections:
        sys.exit(f"text_order.py: no .text input sections in {map_path}")
    kept = read_tiers(previous) if previous else {t: set() for t in TIERS}
    idle = warm_sections(sections, read_pages(idle_pages), kept["idle"])
    traffic = warm_sections(sections, read_pages(traffic_pages), kept["traffic"] | kept["idle"]) - idle
    total = sum(s[2] for s in sections)
    sizes = {t: sum(s[2] for s in tier) for t, tier in zip(TIERS, (idle, traffic))}
    warm_bytes = sizes["idle"] + sizes["traffic"]
    print("/* Generated by bench/text-order/run.sh: the code ferry-agent ran, first while it started and")
    print(f"   idled ({len(idle)} sections, {sizes['idle']} bytes), then what it ran for the demo's traffic")
    print(f"   ({len(traffic)} sections, {sizes['traffic']} bytes), of {len(sections)} sections, {total} bytes.")
    print(f"   warm_bytes={warm_bytes}. See bench/text-order/README.md. */")
    print("SECTIONS\n{\n  .text.warm :\n  {")
    seen = set()
    for tier, members in zip(TIERS, (idle, traffic)):
        print(f"    /* {tier} */")
        for section, _, _, path in (s for s in sections if s in members):
            line = pattern(section, path)
            if line not in seen:
                seen.add(line)
                print(f"    {line}")
    print("  }\n}\nINSERT BEFORE .text;")
    print(f"text_order.py: idle {len(idle)} sections, {sizes['idle']} bytes; traffic {len(traffic)} "
          f"sections, {sizes['traffic']} bytes; of {total} bytes", file=sys.stderr)


def main(argv):
    if len(argv) >= 4 and argv[1] == "pages":
        resident_pages(argv[2], argv[3:])
    elif len(argv) in (5, 6) and argv[1] == "script":
        script(*argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
