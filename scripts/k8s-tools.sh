#!/usr/bin/env bash
# Builds the programs `make test-k8s` runs, from the Go module proxy, into a
# git-ignored folder (.tools/k8s/bin, or $K8S_TOOLS_DIR/bin): kube-apiserver,
# kube-controller-manager, kube-scheduler (k8s.io/kubernetes), kwok and helm,
# as pinned by tools/k8s/go.mod. etcd comes from Debian's etcd-server.
# A stamp of go.mod, go.sum and the Go version skips the build when nothing
# changed. Prints the bin directory on its last line.
#   HELM_ONLY=1  builds helm alone (what `make test` needs).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$PATH:/usr/local/go/bin"
DIR=${K8S_TOOLS_DIR:-$ROOT/.tools/k8s}
BIN=$DIR/bin
mkdir -p "$BIN"
K8S_VERSION=$(cd "$ROOT/tools/k8s" && GOWORK=off go list -m -f '{{.Version}}' k8s.io/kubernetes)
KV=${K8S_VERSION#v}
MAJOR=${KV%%.*}; MINOR=$(echo "$KV" | cut -d. -f2)
K8S_LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=$MAJOR -X k8s.io/component-base/version.gitMinor=$MINOR -X k8s.io/component-base/version.gitTreeState=clean"
# What helm's own Makefile sets: its version, and the Kubernetes version
# `helm template` and `helm lint` assume.
HELM_VERSION=$(cd "$ROOT/tools/k8s" && GOWORK=off go list -m -f '{{.Version}}' helm.sh/helm/v3)
HELM_LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  HELM_LDFLAGS="$HELM_LDFLAGS -X $p.k8sVersionMajor=$MAJOR -X $p.k8sVersionMinor=$MINOR"
done

build() { # stamp-name ldflags binaries... -- packages...
  local name=$1 ldflags=$2; shift 2
  local bins=() pkgs=()
  while [ "$1" != "--" ]; do bins+=("$1"); shift; done; shift; pkgs=("$@")
  local stamp
  stamp=$(cat "$ROOT/tools/k8s/go.mod" "$ROOT/tools/k8s/go.sum" <(go version) <(echo "$ldflags") | sha256sum | cut -c1-16)
  local ok=1
  for b in "${bins[@]}"; do [ -x "$BIN/$b" ] || ok=0; done
  if [ "$ok" = 1 ] && [ "$(cat "$BIN/.stamp-$name" 2>/dev/null)" = "$stamp" ]; then return 0; fi
  echo "building ${bins[*]} (k8s.io/kubernetes $K8S_VERSION)" >&2
  local start=$SECONDS
  (cd "$ROOT/tools/k8s" && GOWORK=off GOFLAGS=-mod=readonly go build -trimpath -ldflags "$ldflags" -o "$BIN/" "${pkgs[@]}")
  echo "$stamp" >"$BIN/.stamp-$name"
  echo "built ${bins[*]} in $((SECONDS - start))s" >&2
}

build helm "$HELM_LDFLAGS" helm -- helm.sh/helm/v3/cmd/helm
if [ -z "${HELM_ONLY:-}" ]; then
  build cluster "$K8S_LDFLAGS" kube-apiserver kube-controller-manager kube-scheduler kwok -- \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler sigs.k8s.io/kwok/cmd/kwok
  # go build names the binary of go.etcd.io/etcd/server/v3 "server".
  build etcd "-s -w" server -- go.etcd.io/etcd/server/v3
  ln -sf server "$BIN/etcd"
fi
echo "$BIN"
