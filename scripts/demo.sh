#!/usr/bin/env bash
# Installs what is missing, builds Ferry, and runs the demo: a two-node mesh on this machine.
# Everything it creates (namespaces, cgroups, BPF programs, processes) is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh >/dev/null
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" >/dev/null

cluster_cli=build/test/harness/ferry-cluster
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

id=$(printf '%04x' $((RANDOM % 65536)))
cleanup() { "$cluster_cli" down "$id" >/dev/null 2>&1 || true; }
trap cleanup EXIT
in_pod() { local pod=$1; shift; "$cluster_cli" exec "$id" "$pod" -- "$@"; }

say "A local cluster: 2 nodes x 2 pods (network namespaces + cgroups on one bridge)"
"$cluster_cli" up --nodes 2 --pods 2 --id "$id"
scratch=/tmp/ferry-$id-scratch
mkdir -p "$scratch/www"
echo "hello from n1p1 (secret-marker-7f3c)" > "$scratch/www/index.html"

say "n1p1 (node1) serves HTTP on :8080"
in_pod n1p1 python3 -m http.server 8080 --bind 0.0.0.0 --directory "$scratch/www" \
  >"$scratch/http.log" 2>&1 &
for _ in $(seq 50); do in_pod n1p1 curl -s -o /dev/null http://10.244.1.11:8080/ && break; sleep 0.1; done

# --- agent section (ferry-agent on each node: capture, mTLS, policy) -----------------------
say "Certificates: a demo CA and one SPIFFE SVID per pod (spiffe://cluster.local/ns/default/sa/sa-<pod>)"
pki=$scratch/pki
mkdir -p "$pki" "$scratch/manifests"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj "/O=ferry-demo/CN=demo root" -keyout "$pki/ca.key" -out "$pki/bundle.pem" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  2>/dev/null
for node in 1 2; do
  certs=$scratch/certs-node$node
  mkdir -p "$certs"
  cp "$pki/bundle.pem" "$certs/"
  for p in 1 2; do
    pod=n${node}p$p
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=ferry-demo" \
      -keyout "$certs/default.sa-$pod.key" -out "$pki/$pod.csr" 2>/dev/null
    printf '%s\n' "subjectAltName=critical,URI:spiffe://cluster.local/ns/default/sa/sa-$pod" \
      "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth,clientAuth" >"$pki/$pod.ext"
    openssl x509 -req -in "$pki/$pod.csr" -CA "$pki/bundle.pem" -CAkey "$pki/ca.key" \
      -CAcreateserial -days 1 -extfile "$pki/$pod.ext" -out "$certs/default.sa-$pod.crt" 2>/dev/null
    printf '%s\n' "apiVersion: v1" "kind: Pod" \
      "metadata: {name: $pod, namespace: default, uid: uid-$pod, labels: {app: $pod}}" \
      "spec: {nodeName: node$node, serviceAccountName: sa-$pod}" \
      "status: {podIPs: [{ip: 10.244.$node.1$p}, {ip: \"fd00:244::$node:1$p\"}]}" \
      >"$scratch/manifests/pod-$pod.yaml"
  done
done

say "Policy: only n2p1's identity may reach n1p1"
printf '%s\n' "apiVersion: security.ferry.dev/v1alpha1" "kind: AuthorizationPolicy" \
  "metadata: {name: n1p1-from-n2p1, namespace: default}" "spec:" \
  "  selector: {matchLabels: {app: n1p1}}" "  action: ALLOW" "  rules:" "  - from:" \
  "    - source: {principals: [\"cluster.local/ns/default/sa/sa-n2p1\"]}" \
  | tee "$scratch/manifests/allow-n2p1.yaml"

say "ferry-agent on node1 and node2 (eBPF capture, in-pod listeners 15001/15006/15008, HBONE mTLS)"
agent_pids=()
for node in 1 2; do
  (
    # The agent runs in the node's agent cgroup, outside the pods' subtree it captures.
    echo "$BASHPID" >"/sys/fs/cgroup/unified/ferry-$id/agent$node/cgroup.procs"
    exec build/agent/ferry-agent --node="node$node" --certs="$scratch/certs-node$node" \
      --manifests="$scratch/manifests" --capture=bpf \
      --cgroup="/sys/fs/cgroup/unified/ferry-$id/node$node" \
      --bpffs="/sys/fs/bpf/ferry-$id-node$node" --enroll-socket="$scratch/node$node-agent.sock" \
      --state-file="$scratch/node$node-pods.json" --admin-port=$((15000 + node * 100))
  ) >"$scratch/agent-node$node.log" 2>&1 &
  agent_pids+=($!)
done
stop_agents() { kill -TERM "${agent_pids[@]}" 2>/dev/null || true; wait "${agent_pids[@]}" 2>/dev/null || true; }
trap 'stop_agents; cleanup' EXIT
for node in 1 2; do
  for _ in $(seq 100); do
    curl -s "http://127.0.0.1:$((15000 + node * 100))/ready" >/dev/null && break
    sleep 0.1
  done
done
# Enrollment, as ferry-cni does it: one JSON line over the node agent's Unix socket.
enroll() {
  local pod=$1 node=${1:1:1} idx=${1:3:1}
  python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode() + b"\n")
print(sys.argv[3], "->", s.recv(4096).decode().strip())' "$scratch/node$node-agent.sock" \
    "{\"op\":\"add\",\"pod\":{\"uid\":\"uid-$pod\",\"name\":\"$pod\",\"namespace\":\"default\",\"service_account\":\"sa-$pod\",\"netns\":\"/run/netns/ferry-$id-$pod\",\"ips\":[\"10.244.$node.1$idx\",\"fd00:244::$node:1$idx\"]}}" \
    "$pod"
}
for pod in n1p1 n1p2 n2p1 n2p2; do enroll "$pod"; done

say "Policy at work: node1's agent sees each caller's mTLS identity"
echo "n2p2 -> n1p1:"
in_pod n2p2 curl -sS --max-time 5 http://10.244.1.11:8080/ || echo "  refused (sa-n2p2 is not allowed)"
echo "n2p1 -> n1p1:"
in_pod n2p1 curl -sS --max-time 5 http://10.244.1.11:8080/ || true
stats() { curl -s "http://127.0.0.1:$1/stats" | python3 -c 'import json, sys
d = json.load(sys.stdin); print("  " + ", ".join("%s=%s" % (k, d[k]) for k in sys.argv[1:]))' "${@:2}"; }
echo "node2 agent (sender):"
stats 15200 outbound_hbone tls_handshakes_client pool_streams_reused
echo "node1 agent (receiver):"
stats 15100 inbound_hbone_streams tls_handshakes_server policy_denied
# ------------------------------------------------------------------------------------------

say "n2p1 (node2) -> n1p1: curl http://10.244.1.11:8080/"
tcpdump_log=$scratch/capture.txt
# Capture on the bridge, in the cluster's private switch namespace.
ip netns exec "ferry-$id-sw" timeout 5 tcpdump -l -i any -A -s 0 tcp \
  >"$tcpdump_log" 2>/dev/null &
tcpdump_pid=$!
sleep 1
in_pod n2p1 curl -sS http://10.244.1.11:8080/
sleep 0.5
kill -INT "$tcpdump_pid" 2>/dev/null || true
wait "$tcpdump_pid" 2>/dev/null || true

say "What the wire between the nodes carried"
if grep -q "secret-marker-7f3c" "$tcpdump_log"; then
  echo "PLAINTEXT: the marker string crossed the bridge in the clear (no mesh yet)"
else
  echo "the marker string never appeared in clear on the bridge"
fi

say "Done; tearing the cluster down"
