#!/usr/bin/env bash
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#
# Regenerates agent/warm_text.ld, the list of code ferry-agent runs, which its link places first
# (README.md beside this). Root: it runs agents fed by ferry-controller, and turns read-ahead off
# for the disk holding the build while they run. Rounds until one adds nothing, each: link; with
# the binary out of the page cache, record which of its code pages are resident in a one-node
# agent once it is ready and idle, then in the two agents of scripts/demo.sh once its traffic has
# run; add what ran.
#
#   sudo bench/text-order/run.sh   # uses build/, as scripts/demo.sh does; about 2 minutes
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=$repo/build
agent=$build/agent/ferry-agent
script=$repo/agent/warm_text.ld
tool=$repo/bench/text-order/text_order.py
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (BPF capture, read-ahead, /proc/PID/pagemap)" >&2; exit 1; }
[ -x "$agent" ] || { echo "run.sh: no $agent (build it first)" >&2; exit 1; }
work=$(mktemp -d /tmp/text-order.XXXXXX)
id=$(printf '%04x' $((RANDOM % 65536)))

# Read-ahead off, so that a page of the binary is in the page cache only if the agent ran it;
# the kernel's fault-around then maps nothing it did not run either.
dev=$(stat -c '%d' "$agent")
queue=/sys/dev/block/$((dev >> 8)):$((dev & 255))
[ -e "$queue/queue" ] || queue=$queue/..
ra_file=$queue/queue/read_ahead_kb
ra=$(cat "$ra_file")
controller_pid='' agent_pid='' finished=0
cp "$script" "$work/original.ld"
cleanup() {
  echo "$ra" >"$ra_file"
  # Stopped before the end: the list it started from is put back, not a partial one.
  [ "$finished" = 1 ] || cp "$work/original.ld" "$script"
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  [ -n "$controller_pid" ] && kill "$controller_pid" 2>/dev/null && wait "$controller_pid" 2>/dev/null
  "$build/test/harness/ferry-cluster" down "$id" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The binary out of the page cache, and read-ahead off.
cold() {
  sync "$agent"
  python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)" "$agent"
  echo 0 >"$ra_file"
}

state_version() {
  curl -sf http://127.0.0.1:15900/stats | python3 -c 'import json, sys; print(json.load(sys.stdin)["state_version"])'
}

# The agent's resident code pages once it has started, taken a policy change and idled, into $1.
measure_idle() {
  cold
  "$build/test/harness/ferry-cluster" up --nodes 1 --pods 1 --id "$id" >"$work/cluster.txt"
  echo "tok-$(openssl rand -hex 16)" >"$work/token"
  chmod 600 "$work/token"
  rm -rf "$work/policies"
  cp -r "$repo/policies" "$work/policies"
  "$build/controller/ferry-controller" --manifests "$work/policies" --bootstrap-token-file "$work/token" \
    --ca-dir "$work/ca" --trust-bundle-file "$work/bundle.pem" --listen 127.0.0.1:15912 \
    >"$work/controller.log" 2>&1 &
  controller_pid=$!
  for _ in $(seq 100); do grep -q "serving agents" "$work/controller.log" && break; sleep 0.1; done
  (
    echo "$BASHPID" >"/sys/fs/cgroup/unified/ferry-$id/agent1/cgroup.procs"
    exec "$agent" --node=node1 --controller=127.0.0.1:15912 --bootstrap-token-file="$work/token" \
      --controller-ca="$work/bundle.pem" --capture=bpf --cgroup="/sys/fs/cgroup/unified/ferry-$id/node1" \
      --bpffs="/sys/fs/bpf/ferry-$id-node1" --enroll-socket="$work/enroll.sock" \
      --state-file="$work/pods.json" --admin-port=15900 --metrics-address=127.0.0.1:15920 \
      --readiness-port=15921
  ) >"$work/agent.log" 2>&1 &
  agent_pid=$!
  local ready=0
  for _ in $(seq 300); do
    curl -sf http://127.0.0.1:15900/ready >/dev/null && { ready=1; break; }
    sleep 0.1
  done
  [ "$ready" = 1 ] || { echo "run.sh: the agent did not become ready:"; cat "$work/agent.log"; exit 1; } >&2
  # A policy change reaches the agent as a delta, as when an operator applies one.
  local version
  version=$(state_version)
  printf '%s\n' 'apiVersion: security.ferry.dev/v1alpha1' 'kind: AuthorizationPolicy' \
    'metadata: {name: text-order, namespace: demo}' \
    'spec: {action: ALLOW, rules: [{to: [{operation: {methods: [GET], paths: ["/api/*"]}}]}]}' \
    >"$work/policies/text-order.yaml"
  for _ in $(seq 100); do
    [ "$(state_version)" != "$version" ] && break
    sleep 0.1
  done
  [ "$(state_version)" != "$version" ] ||
    { echo "run.sh: the agent did not take the policy change (state_version $version)" >&2; exit 1; }
  # Idle: timers, the controller's stream and certificate checks run as they do on a node.
  sleep 5
  curl -sf http://127.0.0.1:15920/metrics >/dev/null  # and one scrape, as Prometheus does
  python3 "$tool" pages "$agent" "$agent_pid" >"$1"
  kill "$agent_pid" "$controller_pid"
  wait "$agent_pid" "$controller_pid" || true
  agent_pid='' controller_pid=''
  echo "$ra" >"$ra_file"
  "$build/test/harness/ferry-cluster" down "$id" >/dev/null
}

# The code pages resident in the demo's two agents once its traffic has run, into $1.
measure_traffic() {
  printf '#!/bin/bash\npython3 %q pages %q "$@" >%q\n' "$tool" "$agent" "$1" >"$work/at-end.sh"
  cold
  FERRY_DEMO_AT_END="bash $work/at-end.sh" "$repo/scripts/demo.sh" >"$work/demo.log" 2>&1 ||
    { echo "run.sh: scripts/demo.sh failed:"; tail -20 "$work/demo.log"; exit 1; } >&2
  echo "$ra" >"$ra_file"
}

# Start from no order, then each round adds what ran in the layout the round before made.
printf '/* warm_bytes=0 */\nSECTIONS\n{\n  .text.warm : { }\n}\nINSERT BEFORE .text;\n' >"$script"
# Until a round adds nothing (at most four).
for round in 1 2 3 4; do
  ninja -C "$build" agent/ferry-agent >/dev/null
  measure_idle "$work/idle-$round.txt"
  measure_traffic "$work/traffic-$round.txt"
  echo "run.sh: round $round: $(wc -l <"$work/idle-$round.txt") code pages resident idle," \
    "$(wc -l <"$work/traffic-$round.txt") after the demo"
  previous=$work/previous.ld
  cp "$script" "$previous"
  python3 "$tool" script "$agent.map" "$work/idle-$round.txt" "$work/traffic-$round.txt" "$previous" >"$script"
  (grep '^    \*' "$previous" || true) | sort >"$work/before.txt"
  (grep '^    \*' "$script" || true) | sort >"$work/after.txt"
  cmp -s "$work/before.txt" "$work/after.txt" && break
done
ninja -C "$build" agent/ferry-agent >/dev/null
finished=1
echo "run.sh: wrote $script; the agent in $build is linked with it"
