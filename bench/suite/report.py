#!/usr/bin/python3
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
"""Turns the suite's raw.csv into summary.csv, table.md and PNG plots (gnuplot).

usage: report.py DIR    (DIR holds raw.csv and meta.txt from ferry-bench-suite)
"""
import csv
import math
import os
import re
import statistics
import subprocess
import sys

CASES = [
    ("no_mesh", "no mesh"),
    ("ferry_l4", "Ferry L4"),
    ("ferry_l7", "Ferry L7"),
    ("ferry_l7_routed", "Ferry L7 routed"),
    ("ferry_l7_routed_local", "Ferry L7 routed, same node"),
    ("ferry_l7_jwt", "Ferry L7 + JWT, repeated token"),
    ("ferry_l7_jwt_new", "Ferry L7 + JWT, first-seen tokens"),
    ("ferry_same_node", "Ferry same node"),
    ("stunnel", "stunnel pair"),
    ("haproxy", "HAProxy pair"),
]
# metric, label, higher is better
METRICS = [
    ("lat_p50_us", "latency p50 (us) at 1,000 req/s", False),
    ("lat_p90_us", "latency p90 (us)", False),
    ("lat_p99_us", "latency p99 (us)", False),
    ("lat_p999_us", "latency p99.9 (us)", False),
    ("lat_direct_connections", "latency run's connections carried direct (same node)", True),
    ("tput1_gbps", "throughput, 1 stream (Gbit/s)", True),
    ("tput8_gbps", "throughput, 8 streams (Gbit/s)", True),
    ("tput1_cpu_ms_per_gb", "proxy CPU per GB, 1 stream (ms)", False),
    ("tput8_cpu_ms_per_gb", "proxy CPU per GB, 8 streams (ms)", False),
    ("tput1_kernel_pct", "proxy CPU in the kernel, 1 stream (%)", False),
    ("tput8_kernel_pct", "proxy CPU in the kernel, 8 streams (%)", False),
    ("tput1_busy_pct", "machine busy, 1 stream (% of all cores)", False),
    ("tput8_busy_pct", "machine busy, 8 streams (% of all cores)", False),
    ("tput1_top_thread_pct", "busiest agent thread, 1 stream (% of one core)", False),
    ("tput8_top_thread_pct", "busiest agent thread, 8 streams (% of one core)", False),
    ("sat_rps", "saturation (req/s)", True),
    ("sat_busy_pct", "machine busy at saturation (% of all cores)", False),
    ("sat_top_thread_pct", "busiest agent thread at saturation (% of one core)", False),
    ("sat_cpu_us_per_req", "proxy CPU per request (us)", False),
    ("sat_kernel_pct", "proxy CPU in the kernel at saturation (%)", False),
    ("conn_rps", "new connections/s", True),
    ("conn_cpu_us_per_req", "proxy CPU per new connection (us)", False),
    ("conn_kernel_pct", "proxy CPU in the kernel, new connections (%)", False),
    ("rss_idle_mib", "RSS idle per proxy process (MiB)", False),
    ("rss_anon_idle_mib", "RSS idle, anonymous part (MiB): no shared library pages", False),
    ("rss_bytes_per_conn", "RSS per idle connection per proxy (bytes)", False),
]

# Shares of the machine or of one core, and counts of how a run went: no ratio to make.
NO_RATIO = ("_busy_pct", "_top_thread_pct", "_kernel_pct", "_direct_connections")


def load(path):
    values = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            v = float(r["value"])
            values.setdefault((r["case"], r["metric"]), []).append(v)
    return values


def fmt(v):
    if v is None or math.isnan(v):
        return "n/a"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def relay_floor(out, meta, m, lines):
    """The most any user-space TLS relay pair could move on this machine, from this run: per GB,
    the iperf3 ends (the machine's CPU in the no-mesh run), the kernel's work of the relay pair
    that needed least of it here, and the cipher alone (cipher.txt, bench/run.sh)."""
    lines.append("\n## What this machine allows a user-space TLS relay pair (issue 19)\n")
    cipher = {}
    path = os.path.join(out, "cipher.txt")
    if os.path.exists(path):
        for line in open(path):
            parts = line.split()
            if len(parts) == 2:
                cipher[parts[0]] = float(parts[1])
    found = re.search(r"(\d+) cores", meta)
    cores = int(found.group(1)) if found else os.cpu_count()
    if not cipher.get("encrypt") or not cipher.get("decrypt"):
        lines.append("cipher.txt has no AES-128-GCM speed (bench/run.sh measures it): no floor.")
        return
    cipher_ms = 1e3 / (cipher["encrypt"] / 1e9) + 1e3 / (cipher["decrypt"] / 1e9)
    lines.append(f"AES-128-GCM on 16 KiB records: sealing {cipher['encrypt'] / 1e9:.2f} GB/s, "
                 f"opening {cipher['decrypt'] / 1e9:.2f} GB/s: {cipher_ms:,.0f} ms of CPU per GB "
                 f"sealed once and opened once. {cores} cores.\n")
    lines.append("| figure | 1 stream | 8 streams |")
    lines.append("|---|---:|---:|")
    rows = {"ends": [], "kernel": [], "floor": [], "max": [], "goal": [], "ferry": []}
    for s in ("tput1", "tput8"):
        gbps, busy = m("no_mesh", f"{s}_gbps"), m("no_mesh", f"{s}_busy_pct")
        ends = busy / 100 * cores * 1e3 / (gbps / 8) if gbps and busy else None
        kernels = []
        for c in ("ferry_l4", "stunnel", "haproxy"):
            cpu, share = m(c, f"{s}_cpu_ms_per_gb"), m(c, f"{s}_kernel_pct")
            if cpu is not None and share is not None:
                kernels.append((cpu * share / 100, c))
        kernel = min(kernels) if kernels else None
        floor = ends + kernel[0] + cipher_ms if ends is not None and kernel else None
        peers = [v for v in (m("stunnel", f"{s}_gbps"), m("haproxy", f"{s}_gbps")) if v]
        rows["ends"].append(fmt(ends))
        rows["kernel"].append("n/a" if not kernel else f"{fmt(kernel[0])} ({kernel[1]})")
        rows["floor"].append(fmt(floor))
        rows["max"].append(fmt(cores * 1e3 / floor * 8 if floor else None))
        if s == "tput1":
            rows["goal"].append(f"{fmt(0.6 * gbps if gbps else None)} (60% of no mesh), "
                                f"{fmt(1.5 * max(peers) if peers else None)} "
                                "(1.5x the better peer pair)")
        else:
            one = m("ferry_l4", "tput1_gbps")
            rows["goal"].append(f"{fmt(1.5 * one if one else None)} (1.5x Ferry's 1 stream)")
        rows["ferry"].append(fmt(m("ferry_l4", f"{s}_gbps")))
    for key, label in (
            ("ends", "the iperf3 ends: the machine's CPU in the no-mesh run (ms)"),
            ("kernel", "the kernel's work of the relay pair that needed least of it (ms)"),
            ("floor", "floor: ends + that kernel work + the cipher (ms)"),
            ("max", "the most a relay pair can move with every core busy (Gbit/s)"),
            ("goal", "issue 19's goal (Gbit/s)"),
            ("ferry", "Ferry L4 (Gbit/s)")):
        lines.append(f"| {label} | " + " | ".join(rows[key]) + " |")
    lines.append("\nThe floor leaves nothing for a relay's own user-space work but the cipher (the "
                 "peers spend more than that on it), so no user-space TLS relay pair reaches "
                 "the most shown; a goal above it cannot be met on this machine.")


def main():
    out = sys.argv[1]
    raw = load(os.path.join(out, "raw.csv"))
    med = {k: statistics.median(v) for k, v in raw.items()}
    cases = [c for c in CASES if any(k[0] == c[0] for k in med)]

    with open(os.path.join(out, "summary.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case", "metric", "median", "min", "max", "runs"])
        for (case, metric), v in sorted(raw.items()):
            w.writerow([case, metric, statistics.median(v), min(v), max(v), len(v)])

    def m(case, metric):
        return med.get((case, metric))

    lines = []
    meta = open(os.path.join(out, "meta.txt")).read() if os.path.exists(
        os.path.join(out, "meta.txt")) else ""
    lines.append("# Ferry benchmark results\n")
    lines.append("```\n" + meta.strip() + "\n```\n")
    lines.append("Medians over rounds. CPU is the proxies' own (both agents for Ferry, both "
                 "processes for a pair), from /proc/<pid>/stat.\n")
    lines.append("## Absolute\n")
    lines.append("| metric | " + " | ".join(l for _, l in cases) + " |")
    lines.append("|---|" + "---:|" * len(cases))
    for metric, label, _ in METRICS:
        lines.append(f"| {label} | " + " | ".join(fmt(m(c, metric)) for c, _ in cases) + " |")

    lines.append("\n## Ratios against no mesh (case / no mesh)\n")
    others = [c for c in cases if c[0] != "no_mesh"]
    lines.append("| metric | " + " | ".join(l for _, l in others) + " |")
    lines.append("|---|" + "---:|" * len(others))
    for metric, label, _ in METRICS:
        if m("no_mesh", metric) is None or metric.endswith(NO_RATIO):
            continue
        lines.append(f"| {label} | " + " | ".join(
            fmt(ratio(m(c, metric), m("no_mesh", metric))) for c, _ in others) + " |")

    lines.append("\n## Ferry against each peer (Ferry / peer; latency as added over no mesh)\n")
    pairs = [("ferry_l4", "stunnel"), ("ferry_l4", "haproxy"), ("ferry_l7", "haproxy")]
    lines.append("| metric | " + " | ".join(f"{a} / {b}" for a, b in pairs) + " |")
    lines.append("|---|" + "---:|" * len(pairs))
    for metric, label, _ in METRICS:
        if metric.endswith(NO_RATIO):
            continue
        cells = []
        for a, b in pairs:
            va, vb = m(a, metric), m(b, metric)
            if metric.startswith("lat_") and m("no_mesh", metric) is not None and va and vb:
                va, vb = va - m("no_mesh", metric), vb - m("no_mesh", metric)
                label_cell = fmt(ratio(va, vb))
            else:
                label_cell = fmt(ratio(va, vb))
            cells.append(label_cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    # Issue 6: what enforcing HTTP policy costs, both cases through the same two agents in the
    # same run (ferry_l7's origin pod has an L7 ALLOW policy and an HTTP Service port).
    lines.append("\n## L7 policy against L4 only (Ferry L7 / Ferry L4, same run)\n")
    lines.append("| metric | Ferry L4 | Ferry L7 | L7 / L4 |")
    lines.append("|---|---:|---:|---:|")
    for metric, label in [("sat_rps", "requests/s at saturation"),
                          ("sat_cpu_us_per_req", "agent CPU per request (us, both agents)"),
                          ("lat_p50_us", "latency p50 (us) at 1,000 req/s"),
                          ("lat_p99_us", "latency p99 (us) at 1,000 req/s"),
                          ("conn_rps", "new connections/s"),
                          ("conn_cpu_us_per_req", "agent CPU per new connection (us)")]:
        a, b = m("ferry_l4", metric), m("ferry_l7", metric)
        lines.append(f"| {label} | {fmt(a)} | {fmt(b)} | {fmt(ratio(b, a))} |")

    # Issue 21: a JWT-checked request against the policy-only L7 request, same agents, same run.
    if any(m(c, "sat_cpu_us_per_req") is not None for c in ("ferry_l7_jwt", "ferry_l7_jwt_new")):
        lines.append("\n## JWT request authentication against the policy-only L7 request "
                     "(same run; goal <= 1.3x)\n")
        lines.append("| metric | Ferry L7 | + JWT, repeated token | ratio | "
                     "+ JWT, first-seen tokens | ratio |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        for metric, label in [("sat_cpu_us_per_req", "agent CPU per request (us, both agents)"),
                              ("sat_cpu_us_per_req_proxy1", "of which the client's agent (us)"),
                              ("sat_cpu_us_per_req_proxy2", "of which the server's agent (us)"),
                              ("sat_rps", "requests/s at saturation"),
                              ("lat_p50_us", "latency p50 (us) at 1,000 req/s"),
                              ("lat_p99_us", "latency p99 (us) at 1,000 req/s")]:
            a = m("ferry_l7", metric)
            b, c = m("ferry_l7_jwt", metric), m("ferry_l7_jwt_new", metric)
            lines.append(f"| {label} | {fmt(a)} | {fmt(b)} | {fmt(ratio(b, a))} | {fmt(c)} | "
                         f"{fmt(ratio(c, a))} |")

    lines.append("\n## Targets (issue 10; goals, not assertions)\n")
    lines.append("| target | measured | met |")
    lines.append("|---|---:|:---:|")

    def target(text, value, ok):
        shown = fmt(value)
        lines.append(f"| {text} | {shown} | {'n/a' if value is None else ('yes' if ok(value) else 'no')} |")

    def added(case, metric):
        if m(case, metric) is None or m("no_mesh", metric) is None:
            return None
        return m(case, metric) - m("no_mesh", metric)

    target("added p99, Ferry L4 / HAProxy pair <= 0.5",
           ratio(added("ferry_l4", "lat_p99_us"), added("haproxy", "lat_p99_us")), lambda v: v <= 0.5)
    target("added p99, Ferry L7 / HAProxy pair <= 0.5",
           ratio(added("ferry_l7", "lat_p99_us"), added("haproxy", "lat_p99_us")), lambda v: v <= 0.5)
    target("1-stream throughput, Ferry L4 / stunnel pair >= 2",
           ratio(m("ferry_l4", "tput1_gbps"), m("stunnel", "tput1_gbps")), lambda v: v >= 2)
    target("1-stream throughput, Ferry L4 / no mesh >= 0.6",
           ratio(m("ferry_l4", "tput1_gbps"), m("no_mesh", "tput1_gbps")), lambda v: v >= 0.6)
    target("agent CPU per request, L4 (us, both agents) <= 30",
           m("ferry_l4", "sat_cpu_us_per_req"), lambda v: v <= 30)
    target("agent CPU per request, L7 policy (us, both agents) <= 45",
           m("ferry_l7", "sat_cpu_us_per_req"), lambda v: v <= 45)
    target("agent RSS idle (MiB) <= 12", m("ferry_l4", "rss_idle_mib"), lambda v: v <= 12)
    target("agent RSS per idle connection (bytes) <= 4096",
           m("ferry_l4", "rss_bytes_per_conn"), lambda v: v <= 4096)
    target("same-node p50 round trip / no mesh p50 <= 1",
           ratio(m("ferry_same_node", "lat_p50_us"), m("no_mesh", "lat_p50_us")), lambda v: v <= 1)
    relay_floor(out, meta, m, lines)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write("\n".join(lines) + "\n")

    # Plots: data files, then one gnuplot script.
    with open(os.path.join(out, "latency.dat"), "w") as f:
        f.write("# case p50 p90 p99 p999\n")
        for c, l in cases:
            vals = [m(c, f"lat_{p}_us") for p in ("p50", "p90", "p99", "p999")]
            f.write(f'"{l}" ' + " ".join("NaN" if v is None else str(v) for v in vals) + "\n")
    with open(os.path.join(out, "throughput.dat"), "w") as f:
        f.write("# case one eight\n")
        for c, l in cases:
            vals = [m(c, "tput1_gbps"), m(c, "tput8_gbps")]
            f.write(f'"{l}" ' + " ".join("NaN" if v is None else str(v) for v in vals) + "\n")
    with open(os.path.join(out, "cpu.dat"), "w") as f:
        f.write("# case sat conn\n")
        for c, l in cases:
            vals = [m(c, "sat_cpu_us_per_req"), m(c, "conn_cpu_us_per_req")]
            f.write(f'"{l}" ' + " ".join("NaN" if v is None else str(v) for v in vals) + "\n")
    # A run of cases without iperf3 rows (the L7 cases alone) has nothing to plot there.
    throughput_plot = "" if all(m(c, "tput1_gbps") is None for c, _ in cases) else f"""
set output '{out}/throughput.png'
set title 'iperf3 throughput'
set ylabel 'Gbit/s'
plot '{out}/throughput.dat' using 2:xtic(1) title '1 stream', '' using 3 title '8 streams'
"""
    script = f"""
set terminal pngcairo size 1000,560 noenhanced
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key top right
set grid ytics
set xtics rotate by -20
set output '{out}/latency.png'
set title 'Latency at 1,000 req/s, 1 KB HTTP/1.1, 4 connections (open loop)'
set ylabel 'microseconds (log scale)'
set logscale y
plot '{out}/latency.dat' using 2:xtic(1) title 'p50', '' using 3 title 'p90', '' using 4 title 'p99', '' using 5 title 'p99.9'
unset logscale y
{throughput_plot}set output '{out}/cpu.png'
set title 'Proxy CPU per request at saturation (both sides)'
set ylabel 'CPU microseconds'
plot '{out}/cpu.dat' using 2:xtic(1) title 'keep-alive request', '' using 3 title 'new connection + request'
"""
    if not cases:
        sys.exit("report.py: raw.csv has no rows: nothing to plot (see meta.txt)")
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


if __name__ == "__main__":
    main()
