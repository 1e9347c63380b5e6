#!/usr/bin/env bash
# Installs every Debian package that Ferry's build, tests, demo and benchmarks need.
# Idempotent and non-interactive; safe to run again. Needs root (apt-get).
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git clang llvm lld libclang-rt-14-dev
  python3  # configure time too: test/hbone's CMakeLists.txt requires it (Dockerfile build stage)
  # BPF
  libbpf-dev bpftool linux-libc-dev libelf-dev zlib1g-dev
  # libraries
  libssl-dev libabsl-dev prometheus-cpp-dev catch2 libnghttp2-dev libyaml-cpp-dev
  nlohmann-json3-dev libgrpc++-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev
  libcurl4-openssl-dev  # Kubernetes API client (userspace/kube): HTTPS + chunked watch streams
  libre2-dev  # HTTPRoute regular expressions: RE2, linear time, the dialect Envoy uses
  # local cluster, tests and demo
  iproute2 procps psmisc curl nghttp2-client iperf3 tshark tcpdump python3-h2 python3-grpcio
  openssl prometheus
  # the fake API server's client tests (test/fakes/kube_api_server): the Python client
  python3-kubernetes
  # nghttpd: the cleartext HTTP/2 server h2load talks to in the mesh e2e tests
  nghttp2-server
  # benchmarks
  stunnel4 haproxy wrk gnuplot-nox hyperfine
  # container images (packaging/build-images.sh, e2e_container_test): runc, not crun, since
  # crun refuses cgroup v1+v2 hybrid hosts
  podman buildah debootstrap runc
  # chart tests (test/chart): Go + sprig render the Helm templates, node runs the validators
  nodejs jq golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it installs Debian packages with apt-get)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer once, non-interactively.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup.sh: all ${#packages[@]} packages already installed"
fi

# Machines whose nodejs comes without npm (Debian's own) get Debian's npm for the chart tests.
command -v npm >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends npm

# The distribution's prometheus package starts a service on :9090; Ferry's tests start their
# own Prometheus on a free loopback port, so keep the packaged one from holding resources.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  systemctl stop prometheus || true
fi
