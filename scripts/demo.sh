#!/usr/bin/env bash
# Installs what is missing, builds Ferry, and runs the demo: a two-node mesh on this machine,
# fed by ferry-controller from policies/. Each step checks what it shows: a step that does not
# show it says why and the demo exits non-zero. Everything it creates (namespaces, cgroups, BPF
# programs, processes) is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

./scripts/setup.sh >/dev/null
# An existing build folder keeps its own configuration (build type, warnings).
[ -f build/CMakeCache.txt ] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target ferry-agent ferry-controller ferry-cni ferryctl \
  ferry-cluster >/dev/null

cluster_cli=build/test/harness/ferry-cluster
apps=test/e2e/mesh_apps.py
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ok() { printf '  \033[32mok\033[0m %s\n' "$*"; }
die() {
  printf '\n\033[31mDEMO FAILED: %s\033[0m\n' "$*" >&2
  exit 1
}
# wait_until SECONDS CMD...: run CMD every 0.1 s until it succeeds; fails after SECONDS.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}
# wait_for SECONDS WHAT CMD...: the same, and the demo fails with WHAT if CMD never succeeds.
wait_for() {
  local limit=$1 what=$2
  shift 2
  wait_until "$limit" "$@" || die "$what (not within ${limit}s)"
}

id=$(printf '%04x' $((RANDOM % 65536)))
scratch=/tmp/ferry-demo-$id
pids=()
agent_pids=()
cleanup() {
  local rc=$?
  # Stopping: a process may have exited already, and kill's status is not a failure. No successor
  # is coming, so the agents' drain is ended at once by a second signal (SIGINT after SIGTERM).
  ((${#pids[@]} == 0)) || kill -TERM "${pids[@]}" 2>/dev/null || :
  ((${#pids[@]} == 0)) || kill -INT "${pids[@]}" 2>/dev/null || :
  ((${#pids[@]} == 0)) || wait "${pids[@]}" 2>/dev/null || :
  if ! "$cluster_cli" down "$id" >/dev/null; then
    echo "DEMO FAILED: ferry-cluster down $id did not remove everything" >&2
    rc=1
  fi
  if ((rc != 0)); then
    echo "logs kept in $scratch" >&2
  else
    rm -rf "$scratch"
  fi
  exit "$rc"
}
trap cleanup EXIT
in_pod() {
  local pod=$1
  shift
  "$cluster_cli" exec "$id" "$pod" -- "$@"
}

# --- 1. cluster, controller, agents ----------------------------------------------------------
say "1. A local cluster: 2 nodes x 2 pods (network namespaces + cgroups on one bridge)"
mkdir -p "$scratch"
"$cluster_cli" up --nodes 2 --pods 2 --id "$id" | tee "$scratch/cluster.txt"
netns_of() { awk -v p="$1" '$1 == p { print $4 }' "$scratch/cluster.txt"; }
[ -n "$(netns_of n2p2)" ] || die "ferry-cluster show names no pod n2p2"

say "ferry-controller --manifests policies/: the mesh CA and the agents' state, no Kubernetes"
echo "demo-bootstrap-token-$(openssl rand -hex 16)" >"$scratch/bootstrap-token"
chmod 600 "$scratch/bootstrap-token"
build/controller/ferry-controller --manifests policies --bootstrap-token-file "$scratch/bootstrap-token" \
  --ca-dir "$scratch/ca" --trust-bundle-file "$scratch/trust-bundle.pem" \
  --listen 127.0.0.1:15012 >"$scratch/controller.log" 2>&1 &
pids+=($!)
wait_for 10 "the controller did not start serving agents (see $scratch/controller.log)" \
  grep -q "serving agents" "$scratch/controller.log"
sed 's/^/  /' "$scratch/controller.log"

say "ferry-agent on node1 and node2 (eBPF capture, HBONE mTLS), fed by the controller"
for node in 1 2; do
  (
    # The agent runs in the node's agent cgroup, outside the pods' subtree it captures.
    echo "$BASHPID" >"/sys/fs/cgroup/unified/ferry-$id/agent$node/cgroup.procs"
    exec build/agent/ferry-agent --node="node$node" --controller=127.0.0.1:15012 \
      --bootstrap-token-file="$scratch/bootstrap-token" \
      --controller-ca="$scratch/trust-bundle.pem" --capture=bpf \
      --cgroup="/sys/fs/cgroup/unified/ferry-$id/node$node" \
      --bpffs="/sys/fs/bpf/ferry-$id-node$node" --enroll-socket="$scratch/node$node-agent.sock" \
      --state-file="$scratch/node$node-pods.json" --admin-port=$((15000 + node * 100)) \
      --metrics-address=127.0.0.1:$((15020 + node * 100)) --readiness-port=$((15021 + node * 100))
  ) >"$scratch/agent-node$node.log" 2>&1 &
  pids+=($!)
  agent_pids+=($!)
done
for node in 1 2; do
  wait_for 30 "agent node$node is not ready (see $scratch/agent-node$node.log)" \
    curl -sf "http://127.0.0.1:$((15000 + node * 100))/ready"
  ok "agent node$node ready: admin :$((15000 + node * 100)), metrics :$((15020 + node * 100))"
done

# --- 2. enrollment by ferry-cni, invoked as a container runtime does ---------------------------
say "2. Pods enrolled by ferry-cni, run as a container runtime runs a chained CNI plugin"
cni_add() {
  local pod=$1 node=${1:1:1} idx=${1:3:1}
  local uid="00000000-0000-4000-8000-00000${node}00000${idx}" netns ipv4 ipv6 prev out
  netns=$(netns_of "$pod")
  ipv4=$(awk -v p="$pod" '$1 == p { print $2 }' "$scratch/cluster.txt")
  ipv6=$(awk -v p="$pod" '$1 == p { print $3 }' "$scratch/cluster.txt")
  # What the plugin before it in the chain (bridge + host-local IPAM) would have answered.
  prev="{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"eth0\",\"sandbox\":\"$netns\"}],\
\"ips\":[{\"address\":\"$ipv4/24\",\"interface\":0},{\"address\":\"$ipv6/64\",\"interface\":0}]}"
  if ! out=$(printf '{"cniVersion":"1.0.0","name":"ferry-demo","type":"ferry-cni","socket":"%s","prevResult":%s}' \
    "$scratch/node$node-agent.sock" "$prev" |
    env -i CNI_COMMAND=ADD CNI_CONTAINERID="demo-$id-$pod" CNI_NETNS="$netns" CNI_IFNAME=eth0 \
      CNI_PATH="$PWD/build/cni" \
      CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=$pod;K8S_POD_INFRA_CONTAINER_ID=demo-$id-$pod;K8S_POD_UID=$uid" \
      build/cni/ferry-cni); then
    die "ferry-cni ADD for $pod failed: $out"
  fi
  python3 -c 'import json, sys; sys.exit(json.loads(sys.argv[1]) != json.loads(sys.argv[2]))' \
    "$out" "$prev" || die "ferry-cni ADD for $pod did not pass prevResult through: $out"
  ok "ferry-cni ADD demo/$pod (netns $netns, $ipv4): exit 0, prevResult passed through"
}
for pod in n1p1 n1p2 n2p1 n2p2; do cni_add "$pod"; done
for node in 1 2; do
  ready="http://127.0.0.1:$((15000 + node * 100))/ready"
  wait_until 30 curl -sf "$ready" || die "agent node$node: new pods without certificates: $(curl -s "$ready")"
done
for node in 1 2; do
  curl -sf "http://127.0.0.1:$((15000 + node * 100))/config_dump" >"$scratch/node$node-dump.json" ||
    die "agent node$node: no /config_dump"
done
python3 - "$scratch"/node{1,2}-dump.json <<'EOF' || die "the agents do not hold the 4 pods with their identities"
import json, sys
want = {"n1p1": "demo/client", "n1p2": "demo/web", "n2p1": "demo/web", "n2p2": "demo/db"}
seen = {}
for path in sys.argv[1:]:
    dump = json.load(open(path))
    for p in dump["pods"]:
        seen[p["name"]] = p["identity"]
        print("  %s: %s/%s, identity %s" % (dump["node"], p["namespace"], p["name"], p["identity"]))
sys.exit(seen != want)
EOF

# --- apps: web v1 and v2 (HTTP :8080), db (TCP :5432) -----------------------------------------
say "Apps: web-v1 on n1p2 and web-v2 on n2p1 (HTTP :8080), db on n2p2 (:5432)"
mkdir -p "$scratch/www"
echo "hello from db on n2p2 (secret-marker-7f3c)" >"$scratch/www/index.html"
in_pod n2p2 python3 -m http.server 5432 --bind 0.0.0.0 --directory "$scratch/www" \
  >"$scratch/db.log" 2>&1 &
pids+=($!)
in_pod n1p2 python3 "$apps" http-app --port 8080 --name web-v1 --behavior ok >"$scratch/web-v1.log" 2>&1 &
pids+=($!)
in_pod n2p1 python3 "$apps" http-app --port 8080 --name web-v2 --behavior ok >"$scratch/web-v2.log" 2>&1 &
pids+=($!)
wait_for 10 "db does not serve on n2p2:5432" in_pod n2p2 curl -sf http://127.0.0.1:5432/
wait_for 10 "web-v1 does not serve on n1p2:8080" in_pod n1p2 curl -sf http://127.0.0.1:8080/
wait_for 10 "web-v2 does not serve on n2p1:8080" in_pod n2p1 curl -sf http://127.0.0.1:8080/
ok "all three answer on their pod's loopback (not through the mesh)"

# --- 3. L4 ------------------------------------------------------------------------------------
say "3. L4 policy (allow-by-principal.yaml: db allows only sa web, on 5432)"
denied_before=$(curl -s http://127.0.0.1:15200/stats | python3 -c 'import json, sys; print(json.load(sys.stdin)["policy_denied"])')
body=$(in_pod n1p2 curl -sS --max-time 5 http://10.96.0.20:5432/) || die "n1p2 (sa web) -> db was not allowed"
grep -q secret-marker-7f3c <<<"$body" || die "n1p2 (sa web) -> db answered something else: $body"
ok "n1p2 (sa web) -> db 10.96.0.20:5432: allowed, db answered \"$body\""
if in_pod n1p1 curl -sS --max-time 5 http://10.96.0.20:5432/ >"$scratch/l4-deny.txt" 2>&1; then
  die "n1p1 (sa client) -> db was allowed: $(cat "$scratch/l4-deny.txt")"
fi
denied_after=$(curl -s http://127.0.0.1:15200/stats | python3 -c 'import json, sys; print(json.load(sys.stdin)["policy_denied"])')
((denied_after > denied_before)) || die "n1p1 -> db failed but node2's agent denied nothing: $(cat "$scratch/l4-deny.txt")"
ok "n1p1 (sa client) -> db: refused ($(tr -d '\n' <"$scratch/l4-deny.txt")); node2 policy_denied $denied_before -> $denied_after"

# --- 4. L7 ------------------------------------------------------------------------------------
say "4. L7 policy on web's HTTP port (web-allow-client, deny-admin.yaml: DENY /admin*)"
http_get() { in_pod n1p1 curl -sS --max-time 5 -o "$scratch/l7-body.txt" -w '%{http_code}' "$1"; }
code=$(http_get http://10.96.0.10/) || die "n1p1 (sa client) GET web/ failed"
[ "$code" = 200 ] || die "n1p1 GET web/ answered $code, not 200: $(cat "$scratch/l7-body.txt")"
ok "n1p1 (sa client) GET http://web/       -> $code $(cat "$scratch/l7-body.txt")"
code=$(http_get http://10.96.0.10/admin/users) || die "n1p1 GET web/admin/users failed"
body=$(cat "$scratch/l7-body.txt")
[ "$code" = 403 ] && [ "$body" = "RBAC: access denied" ] ||
  die "n1p1 GET web/admin/users answered $code \"$body\", not 403 RBAC: access denied"
ok "n1p1 (sa client) GET http://web/admin/users -> $code $body"

# --- 5. ferryctl check ------------------------------------------------------------------------
say "5. ferryctl check: why was it refused? (same engine, from policies/)"
build/cli/ferryctl check demo/n1p1 demo/n1p2 GET /admin/users --manifests policies \
  | tee "$scratch/check.txt" | sed 's/^/  /'
grep -q "DECISION *DENY.*demo/deny-admin" "$scratch/check.txt" ||
  die "ferryctl check does not name deny-admin as the reason"
echo
build/cli/ferryctl check demo/n1p1 demo/n2p2 --manifests policies | tee "$scratch/check-l4.txt" \
  | sed 's/^/  /'
grep -q "DECISION *DENY" "$scratch/check-l4.txt" && grep -q "db-allow-web" "$scratch/check-l4.txt" ||
  die "ferryctl check does not deny n1p1 -> db by db-allow-web"

# --- 6. canary ---------------------------------------------------------------------------------
# Offered at 40 requests a second: under rate-limit.yaml's limits for the client ServiceAccount
# (50 a second per web pod), so every request is answered by a backend, none by the limiter.
requests=200
say "6. Canary (canary-route.yaml: web 90% v1 / 10% v2): $requests requests from n1p1 at 40/s"
in_pod n1p1 python3 "$apps" http-load --host 10.96.0.10 --port 80 --count "$requests" \
  --connections 4 --pace 40 >"$scratch/canary.json" ||
  die "the canary load failed: $(cat "$scratch/canary.json")"
python3 - "$scratch/canary.json" "$requests" <<'EOF' || die "the split is not the route's 90/10"
import json, sys
r = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
v1, v2 = r["body"].get("web-v1", 0), r["body"].get("web-v2", 0)
print("  status: %s" % r["status"])
print("  answered by web-v1: %d (%.0f%%), web-v2: %d (%.0f%%)" % (v1, 100.0 * v1 / n, v2, 100.0 * v2 / n))
# 10% of 200 is 20 (sd 4.2): 6..40 is more than 3 sd either side.
sys.exit(not (v1 + v2 == n and 6 <= v2 <= 40))
EOF
code=$(in_pod n1p1 curl -sS --max-time 5 -H 'x-canary: true' -o "$scratch/l7-body.txt" -w '%{http_code}' \
  http://10.96.0.10/) || die "GET web/ with x-canary: true failed"
[ "$code" = 200 ] && [ "$(cat "$scratch/l7-body.txt")" = web-v2 ] ||
  die "x-canary: true was answered $code by $(cat "$scratch/l7-body.txt"), not web-v2"
ok "with x-canary: true -> $code $(cat "$scratch/l7-body.txt") (the header-pinned rule)"

# --- 7. Prometheus ----------------------------------------------------------------------------
say "7. Istio metrics scraped by Prometheus ($(prometheus --version 2>&1 | head -1))"
prom_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$scratch/prometheus"
cat >"$scratch/prometheus/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: ferry-agent
    static_configs:
      - targets: ['127.0.0.1:15120', '127.0.0.1:15220']
EOF
prometheus --config.file="$scratch/prometheus/prometheus.yml" \
  --storage.tsdb.path="$scratch/prometheus/data" --web.listen-address="127.0.0.1:$prom_port" \
  >"$scratch/prometheus/log" 2>&1 &
pids+=($!)
wait_for 30 "Prometheus is not ready (see $scratch/prometheus/log)" \
  curl -sf "http://127.0.0.1:$prom_port/-/ready"
query='sum by (response_code) (istio_requests_total{reporter="destination"})'
promql() {
  curl -sf "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$query" \
    >"$scratch/promql.json" &&
    python3 -c 'import json, sys
r = {s["metric"].get("response_code"): float(s["value"][1]) for s in json.load(open(sys.argv[1]))["data"]["result"]}
sys.exit(not (r.get("200", 0) >= int(sys.argv[2]) and r.get("403", 0) >= 1))' "$scratch/promql.json" "$requests"
}
wait_until 30 promql || die "Prometheus has not $requests 200s and a 403 in: $(cat "$scratch/promql.json")"
echo "  PromQL: $query"
python3 -c 'import json, sys
for s in json.load(open(sys.argv[1]))["data"]["result"]:
    print("    response_code=%-4s %s" % (s["metric"].get("response_code"), s["value"][1]))' "$scratch/promql.json"

# --- 8. mTLS on the wire ----------------------------------------------------------------------
say "8. n1p2 (node1) -> db on n2p2 (node2), watched on the bridge with tcpdump"
capture=$scratch/capture.txt
# Capture on the bridge, in the cluster's private switch namespace.
ip netns exec "ferry-$id-sw" tcpdump -l -i any -A -s 0 -n tcp >"$capture" 2>"$scratch/tcpdump.err" &
tcpdump_pid=$!
pids+=("$tcpdump_pid")
wait_for 10 "tcpdump did not start (see $scratch/tcpdump.err)" grep -q "listening on" "$scratch/tcpdump.err"
body=$(in_pod n1p2 curl -sS --max-time 5 http://10.96.0.20:5432/) || die "n1p2 -> db failed under capture"
grep -q secret-marker-7f3c <<<"$body" || die "db did not send the marker: $body"
hbone_lines() { grep -c '\.15008[ :]' "$capture"; }
wait_for 5 "the capture saw no packet on port 15008" hbone_lines
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" || die "tcpdump failed: $(cat "$scratch/tcpdump.err")"
echo "  the client received: $body"
echo "  $(hbone_lines) captured packets to or from port 15008 (HBONE: HTTP/2 CONNECT over mTLS)"
if grep -q "secret-marker-7f3c" "$capture"; then
  die "PLAINTEXT: the marker crossed the bridge in the clear"
fi
if grep -q '\.5432[ :]' "$capture"; then
  die "PLAINTEXT: a packet to or from port 5432 crossed the bridge outside the tunnel"
fi
echo "  no packet on the bridge to or from db's own port 5432: only the tunnel crossed it"
ok "the marker never appeared in clear on the bridge: the traffic was encrypted"

# bench/text-order/run.sh reads which code the agents ran, while they still run.
if [ -n "${FERRY_DEMO_AT_END:-}" ]; then
  bash -c "$FERRY_DEMO_AT_END \"\$@\"" at-end "${agent_pids[@]}" || die "FERRY_DEMO_AT_END failed"
fi

say "Done in $(($(date +%s) - started)) s; tearing the cluster down"
