#!/usr/bin/env bash
# Builds a Kubernetes v1.20.2 control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler) from Debian bookworm's `kubernetes` source package, the only control plane
# that can be had on machines without a container engine or a Go module proxy, into a cache
# directory outside the repository. A second run with the binaries present does nothing.
#
#   contrib/kubernetes/build-control-plane.sh [CACHE_DIR]     (default: $BATCHD_K8S_CACHE or
#                                                             /var/cache/batchd-k8s/1.20.2)
# Needs root (or sudo) for apt-get; a cold build takes about 7 minutes on 2 cores.
set -euo pipefail
CACHE="${1:-${BATCHD_K8S_CACHE:-/var/cache/batchd-k8s/1.20.2}}"
BIN="$CACHE/bin"
if [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/kube-controller-manager" ] \
   && [ -x "$BIN/kube-scheduler" ] && command -v etcd >/dev/null; then
  echo "control plane already built in $BIN"
  exit 0
fi
SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)

need=()
for pkg in etcd-server etcd-client golang-go rsync jq openssl dpkg-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -q && $SUDO apt-get install -y -q "${need[@]}"
fi
# Debian's own etcd unit would start on install and hold 2379; the tests start their own.
$SUDO systemctl stop etcd >/dev/null 2>&1 || $SUDO pkill -x etcd >/dev/null 2>&1 || true

SRC_LIST=/etc/apt/sources.list.d/batchd-debian-src.sources
if ! apt-get source --download-only --print-uris kubernetes >/dev/null 2>&1; then
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    | $SUDO tee "$SRC_LIST" >/dev/null
  $SUDO apt-get update -q
fi

mkdir -p "$CACHE/src" "$BIN"
cd "$CACHE/src"
if ! ls kubernetes_*.orig.tar.gz >/dev/null 2>&1; then
  apt-get source --download-only kubernetes
fi
TREE="$CACHE/src/kubernetes-1.20.2"
if [ ! -d "$TREE/cmd/kube-apiserver" ]; then
  rm -rf "$TREE.tmp" && mkdir "$TREE.tmp"
  tar xzf kubernetes_*.orig.tar.gz -C "$TREE.tmp" --strip-components=1
  mv "$TREE.tmp" "$TREE"
fi
cd "$TREE"
mkdir -p .go/src/k8s.io && ln -sfn ../../.. .go/src/k8s.io/kubernetes
start=$(date +%s)
GOPATH="$PWD/.go" CGO_ENABLED=0 GOFLAGS=-mod=vendor GOPROXY=off \
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler"
for b in kube-apiserver kube-controller-manager kube-scheduler; do
  install -m 0755 "_output/bin/$b" "$BIN/$b.tmp" && mv "$BIN/$b.tmp" "$BIN/$b"
done
echo "built the control plane into $BIN in $(( $(date +%s) - start )) s"
