#!/usr/bin/env bash
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#
# Tests packaging/ferry-cni-install on temporary folders standing in for a node's
# /opt/cni/bin, /etc/cni/net.d and bpffs pin folder: chaining into a conflist and a
# single-plugin .conf, idempotence, uninstall leaving the files as they were, the
# uninstall-or-keep decision, and the host checks. Usage: cni_install_test.sh SCRIPT
set -uo pipefail

script=${1:?usage: cni_install_test.sh path/to/ferry-cni-install}
for tool in jq cmp bash; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed (scripts/setup.sh installs it)"; exit 1; }
done

passed=0
failed=0
check() {
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok    $name"
  else
    failed=$((failed + 1))
    echo "FAIL  $name"
  fi
}
same_json() { [ "$(jq -S . "$1")" = "$(jq -S . "$2")" ]; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

setup_node() {
  rm -rf "$work/node"
  mkdir -p "$work/node/bin" "$work/node/net.d" "$work/node/bpf/ferry/links" "$work/image"
  printf '#!/bin/sh\necho ferry-cni\n' >"$work/image/ferry-cni"
  chmod 0755 "$work/image/ferry-cni"
  echo pinned >"$work/node/bpf/ferry/links/connect4"
  export FERRY_CNI_BIN_SRC="$work/image/ferry-cni"
  export FERRY_CNI_BIN_DIR="$work/node/bin"
  export FERRY_CNI_CONF_DIR="$work/node/net.d"
  export FERRY_PIN_DIR="$work/node/bpf/ferry"
  export FERRY_CNI_SOCKET=/run/ferry/agent.sock
  unset FERRY_CNI_CONF_NAME
}

conflist='{"cniVersion":"1.0.0","name":"k8s-pod-network","plugins":[
  {"type":"calico","ipam":{"type":"calico-ipam"}},{"type":"portmap","capabilities":{"portMappings":true}}]}'

# --- conflist: chain, idempotence, uninstall ---------------------------------------------
setup_node
echo "$conflist" >"$work/node/net.d/10-calico.conflist"
echo "$conflist" >"$work/original.conflist"
echo '{"cniVersion":"1.0.0","name":"later","plugins":[{"type":"bridge"}]}' >"$work/node/net.d/99-later.conflist"
bash "$script" install 2>"$work/log"
conf="$work/node/net.d/10-calico.conflist"
check "install copies an executable ferry-cni" test -x "$work/node/bin/ferry-cni"
check "install appends ferry-cni last in the first conflist" \
  test "$(jq -c '[.plugins[].type]' "$conf")" = '["calico","portmap","ferry-cni"]'
check "the entry carries the agent socket" \
  test "$(jq -r '.plugins[-1].socket' "$conf")" = /run/ferry/agent.sock
check "other conflists are left alone" \
  test "$(jq -c '[.plugins[].type]' "$work/node/net.d/99-later.conflist")" = '["bridge"]'
bash "$script" install 2>>"$work/log"
check "install twice leaves one ferry-cni entry" \
  test "$(jq '[.plugins[] | select(.type == "ferry-cni")] | length' "$conf")" = 1
check "no temporary file is left behind" test -z "$(ls "$work/node/net.d" | grep ferry-tmp)"
bash "$script" uninstall 2>>"$work/log"
check "uninstall restores the conflist" same_json "$conf" "$work/original.conflist"
check "uninstall removes the binary" test ! -e "$work/node/bin/ferry-cni"
check "uninstall removes the BPF pin folder" test ! -e "$work/node/bpf/ferry"
check "uninstall leaves only the primary CNI's files" \
  test "$(ls "$work/node/net.d" | tr '\n' ' ')" = "10-calico.conflist 99-later.conflist "

# --- single-plugin .conf: converted, then restored byte for byte --------------------------
setup_node
printf '{"cniVersion":"0.4.0","name":"bridge","type":"bridge","bridge":"cni0","ipam":{"type":"host-local"}}\n' \
  >"$work/node/net.d/10-bridge.conf"
cp "$work/node/net.d/10-bridge.conf" "$work/original.conf"
bash "$script" install 2>>"$work/log"
list="$work/node/net.d/10-bridge.conflist"
check ".conf becomes a .conflist with bridge then ferry-cni" \
  test "$(jq -c '[.name, .cniVersion, [.plugins[].type]]' "$list" 2>/dev/null)" = '["bridge","0.4.0",["bridge","ferry-cni"]]'
check "the .conf no longer shadows the .conflist" test ! -e "$work/node/net.d/10-bridge.conf"
bash "$script" uninstall 2>>"$work/log"
check "uninstall puts the original .conf back unchanged" cmp -s "$work/node/net.d/10-bridge.conf" "$work/original.conf"
check "uninstall removes the converted .conflist and backup" \
  test "$(ls -A "$work/node/net.d" | tr '\n' ' ')" = "10-bridge.conf "

# --- choosing the file, and refusing to guess -------------------------------------------
setup_node
echo "$conflist" >"$work/node/net.d/05-first.conflist"
echo "$conflist" >"$work/node/net.d/10-chosen.conflist"
FERRY_CNI_CONF_NAME=10-chosen.conflist bash "$script" install 2>>"$work/log"
check "FERRY_CNI_CONF_NAME picks the file" \
  test "$(jq '.plugins | length' "$work/node/net.d/10-chosen.conflist")/$(jq '.plugins | length' "$work/node/net.d/05-first.conflist")" = 3/2
setup_node
check "install with no CNI configuration fails" bash -c "! bash '$script' install 2>'$work/err'"
check "... and says the primary CNI must come first" grep -q "primary CNI" "$work/err"
echo '{"plugins": [' >"$work/node/net.d/10-broken.conflist"
check "a broken conflist is refused, not overwritten" bash -c "! bash '$script' install 2>'$work/err'"
check "... with a clear reason" grep -q "not valid JSON" "$work/err"

# --- run: waits for the primary CNI, re-chains after a rewrite, keeps config on SIGTERM ----
setup_node
FERRY_CNI_RECHECK_SECONDS=1 bash "$script" run 2>>"$work/log" &
runner=$!
wait_for() { # the shell's eventually (test/eventually.h): bounded, 15 s
  local i
  for i in $(seq 1 150); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}
chained_now() { jq -e 'any(.plugins[]; .type == "ferry-cni")' "$work/node/net.d/10-calico.conflist" >/dev/null 2>&1; }
check "run waits while there is no primary CNI configuration" \
  wait_for grep -q "waiting for the primary CNI" "$work/log"
echo "$conflist" >"$work/node/net.d/10-calico.conflist"
check "run chains Ferry once the primary CNI writes its config" wait_for chained_now
echo "$conflist" >"$work/node/net.d/10-calico.conflist"
check "run puts Ferry back after the primary CNI rewrites the file" wait_for chained_now
kill -TERM "$runner"
wait "$runner"
check "run exits 0 on SIGTERM" test $? -eq 0
check "... and leaves the chain in place (preStop decides)" chained_now

# --- uninstall or keep: table of API answers ----------------------------------------------
decide_row() {
  local code=$1 body=$2 want=$3
  printf '%s' "$body" >"$work/body"
  check "API $code ${body:0:40} -> $want" test "$(bash "$script" decide "$code" "$work/body")" = "$want"
}
decide_row 200 '{"metadata":{"name":"ferry-agent"}}' keep
decide_row 200 '{"metadata":{"name":"ferry-agent","deletionTimestamp":"2026-01-01T00:00:00Z"}}' uninstall
decide_row 404 '{"kind":"Status","code":404}' uninstall
decide_row 403 '{"kind":"Status","code":403}' uninstall
decide_row 401 '{"kind":"Status","code":401}' uninstall
decide_row 000 '' keep
decide_row 500 '{}' keep
decide_row 503 'not json' keep

# --- host checks ---------------------------------------------------------------------------
check "check-host refuses a folder that is not bpffs" \
  bash -c "! FERRY_BPFFS='$work' FERRY_CGROUP='$work' bash '$script' check-host 2>'$work/err'"
check "... naming the mount to make" grep -q "mount -t bpf" "$work/err"
if [ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" = bpf_fs ]; then
  cg=/sys/fs/cgroup
  [ "$(stat -f -c %T $cg)" = cgroup2fs ] || cg=/sys/fs/cgroup/unified
  check "check-host accepts this machine's bpffs and cgroup v2 ($cg)" \
    env FERRY_BPFFS=/sys/fs/bpf FERRY_CGROUP="$cg" bash "$script" check-host
  check "check-host refuses cgroup v1 / tmpfs" \
    bash -c "! FERRY_BPFFS=/sys/fs/bpf FERRY_CGROUP=/dev bash '$script' check-host 2>'$work/err'"
  check "... saying cgroup v2 is needed" grep -q "not cgroup v2" "$work/err"
else
  echo "FAIL  /sys/fs/bpf is not mounted on this machine (mount -t bpf bpf /sys/fs/bpf)"
  failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
