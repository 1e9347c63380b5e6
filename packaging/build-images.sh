#!/usr/bin/env bash
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
#
# Builds Ferry's images with buildah from packaging/Dockerfile on a Debian 12 base made here by
# debootstrap (no registry pull), then checks them: size, user, each binary's --version.
#
#   packaging/build-images.sh [--from-build DIR] [--tag TAG] [--cache DIR] [--mirror URL]
#
#   --from-build DIR  take the binaries from a CMake build tree (the host must be Debian 12, as
#                     the base is) instead of compiling them in the Dockerfile's build stage.
#   --tag TAG         image tag (default: the project version from CMakeLists.txt).
#   --cache DIR       where the debootstrap root filesystem tarball is kept (default
#                     /var/cache/ferry-images); a rerun reuses it.
#   --mirror URL      Debian mirror (default: the first http(s) URI of the host's apt sources).
#
# Images: localhost/ferry-base:bookworm (the debootstrap base), localhost/ferry-agent:TAG,
# localhost/ferry-controller:TAG, localhost/ferry-cni:TAG, localhost/ferryctl:TAG. The last
# lines printed are the summary (sizes, users, versions, seconds per step).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
from_build="" tag="" cache=/var/cache/ferry-images mirror=""
while [ $# -gt 0 ]; do
  case "$1" in
    --from-build) from_build=$(cd "$2" && pwd) && shift 2 ;;
    --tag) tag=$2 && shift 2 ;;
    --cache) cache=$2 && shift 2 ;;
    --mirror) mirror=$2 && shift 2 ;;
    -h | --help) sed -n '3,19p' "$0" | sed 's/^# \{0,1\}//' && exit 0 ;;
    *) echo "build-images: unknown argument $1" >&2 && exit 2 ;;
  esac
done

die() {
  echo "build-images: $*" >&2
  exit 1
}
for tool in buildah podman debootstrap runc; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/setup.sh installs it)"
done
# runc: crun (podman's default on Debian 12) refuses hosts with cgroup v1 and v2 mixed.
runtime=(--runtime "$(command -v runc)")
# podman run asks for more open files and processes than a host without CAP_SYS_RESOURCE can
# grant (and lowers its own process limit to 32768 first): ask for what it can have.
nofile=$(ulimit -Hn) nproc=$(ulimit -Hu)
[ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
run_args=("${runtime[@]}" --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, rootful buildah)"
version=$(sed -n 's/^project(ferry VERSION \([0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")
tag=${tag:-$version}
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    2>/dev/null | grep -oE 'https?://[^ ]*/debian/?( |$)' | head -n 1 | tr -d ' ' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi
summary=()
step_start=$SECONDS
step_done() {
  summary+=("$(printf 'time  %-28s %4d s' "$1" $((SECONDS - step_start)))")
  step_start=$SECONDS
}

# ---- base: debootstrap bookworm minbase, cached as a tarball --------------------------------
base=localhost/ferry-base:bookworm
tarball=$cache/bookworm-minbase.tar
if [ ! -s "$tarball" ]; then
  mkdir -p "$cache"
  rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  echo "build-images: debootstrap bookworm (minbase) from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $cache/debootstrap.log"
  # The apt lists the image starts with: the mirror's bookworm and bookworm-updates, and the
  # security archive beside it when the mirror is Debian's own.
  security=${mirror%/debian*}/debian-security
  {
    echo "deb $mirror bookworm main"
    echo "deb $mirror bookworm-updates main"
    echo "deb $security bookworm-security main"
  } >"$rootfs/etc/apt/sources.list"
  # As Debian's official image: apt keeps no package caches (pkgcache.bin and srcpkgcache.bin
  # alone are ~90 MB per layer that runs apt-get update), and, as its slim variant, dpkg
  # installs no documentation, manual pages or translations (copyright files stay).
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/*
  tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$rootfs"
  trap - EXIT
  step_done "debootstrap"
fi
# Reimported only when the tarball is newer than the image.
tar_time=$(stat -c %Y "$tarball")
image_time=$(podman image inspect --format '{{.Labels.tarball_mtime}}' "$base" 2>/dev/null || true)
if [ "$image_time" != "$tar_time" ]; then
  podman import --change "LABEL tarball_mtime=$tar_time" --change 'CMD ["/bin/bash"]' \
    "$tarball" "$base" >/dev/null
  step_done "import base"
fi

# ---- images -----------------------------------------------------------------------------
# docker format: the OCI one drops SHELL, and with it the build stage's pipefail.
args=("${runtime[@]}" --network=host --layers --format=docker --build-arg "DEBIAN=$base"
  -f "$repo/packaging/Dockerfile")
context=$repo
# buildah resolves FROM ${BINARIES} to a stage only when the argument is given, not from its
# default; and it reads no Dockerfile.dockerignore by itself.
binaries=(--build-arg BINARIES=build --ignorefile "$repo/packaging/Dockerfile.dockerignore")
if [ -n "$from_build" ]; then
  # Stage the binaries (stripped) and their runtime packages as the build stage would.
  context=$(mktemp -d)
  trap 'rm -rf "$context"' EXIT
  out=$context/prebuilt
  mkdir -p "$out/agent" "$out/controller" "$out/cni" "$out/ferryctl"
  bin() {
    local f
    f=$(find "$from_build" -type f -perm -u+x -name "$1" -not -path '*/CMakeFiles/*' | head -n 1)
    [ -n "$f" ] || die "$1 is not built in $from_build"
    echo "$f"
  }
  cp "$(bin ferry-agent)" "$out/agent/"
  cp "$(bin ferry-cni)" "$repo/packaging/ferry-cni-install" "$out/cni/"
  cp "$(bin ferry-controller)" "$out/controller/"
  cp "$(bin ferryctl)" "$out/ferryctl/"
  strip --strip-unneeded "$out"/*/ferry-agent "$out"/*/ferry-cni "$out"/*/ferry-controller \
    "$out"/*/ferryctl
  for image in agent controller cni ferryctl; do
    "$repo/packaging/runtime-deps.sh" "$out/$image"/ferry* >"$out/$image.packages"
  done
  binaries=(--build-arg BINARIES=prebuilt)
fi
args+=("${binaries[@]}")
for target in agent controller cni ferryctl; do
  name=ferry-$target
  [ "$target" = ferryctl ] && name=ferryctl
  echo "build-images: building localhost/$name:$tag"
  buildah bud "${args[@]}" --target "$target" -t "localhost/$name:$tag" "$context" ||
    die "building $name failed"
  step_done "build $name"
done

# ---- checks -----------------------------------------------------------------------------
# Each image: its user (the chart runs the agent and the CNI installer as root, the controller
# as 65532), its binaries' --version run inside it, and its size.
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1000000 }'; }
check() { # image user binary...
  local image=localhost/$1:$tag want_user=$2 user size bin out
  shift 2
  user=$(podman image inspect --format '{{.Config.User}}' "$image")
  [ "${user:-0}" = "$want_user" ] || die "$image runs as '${user:-root}', want $want_user"
  for bin in "$@"; do
    out=$(podman run "${run_args[@]}" --rm --network=none --read-only --entrypoint "/usr/local/bin/$bin" "$image" --version) ||
      die "$bin --version failed in $image"
    [ "$out" = "$bin $version" ] || die "$bin --version in $image printed '$out'"
  done
  size=$(podman image inspect --format '{{.Size}}' "$image")
  summary+=("$(printf 'image %-32s %6s MB  user %-11s %s' "$image" "$(mb "$size")" \
    "$want_user" "$*")")
}
check ferry-agent 0 ferry-agent
check ferry-controller 65532:65532 ferry-controller
check ferry-cni 0 ferry-cni
check ferryctl 65532:65532 ferryctl
summary+=("$(printf 'image %-32s %6s MB' "$base" \
  "$(mb "$(podman image inspect --format '{{.Size}}' "$base")")")")
step_done "checks"
echo "build-images: summary"
printf '%s\n' "${summary[@]}"
