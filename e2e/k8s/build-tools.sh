#!/usr/bin/env sh
# Builds the parts of a one-node Kubernetes the e2e-k8s suite runs, once,
# into OUT (default .cache/bin): kube-apiserver, kubelet,
# kube-controller-manager, kube-scheduler (v$K8S_VERSION), kine and
# containerd-shim-runc-v2. Kubernetes' own go.mod points its staging modules
# at local folders the module proxy leaves out, so the build goes through a
# small module that points each of them at its published version.
set -eu
OUT=${1:-.cache/bin}
K8S_VERSION=${K8S_VERSION:-1.37.2}
KINE_VERSION=${KINE_VERSION:-v0.17.5}
CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
GO=${GO:-go}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

need=""
for b in kube-apiserver kubelet kube-controller-manager kube-scheduler; do
  [ -x "$OUT/$b" ] || need="$need $b"
done
if [ -n "$need" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "building$need v$K8S_VERSION into $OUT (once; 20-40 min on 2 cores)"
  modfile=$(GOFLAGS=-mod=mod $GO mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/src/.*#\1#p' "$modfile")
  minor=${K8S_VERSION#*.}
  {
    echo "module k8sbuild"
    echo
    echo "go 1.26.0"
    echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m v0.$minor"; done
    echo ")"
  } >"$work/go.mod"
  cat >"$work/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
  (cd "$work" && GOFLAGS=-mod=mod $GO get "k8s.io/kubernetes@v$K8S_VERSION" >/dev/null 2>&1 && GOFLAGS=-mod=mod $GO mod tidy >/dev/null 2>&1)
  for b in $need; do
    echo "  $b"
    (cd "$work" && GOFLAGS=-mod=mod CGO_ENABLED=0 $GO build -trimpath -ldflags='-s -w' -o "$OUT/$b" "k8s.io/kubernetes/cmd/$b")
  done
fi
if [ ! -x "$OUT/kine" ]; then
  echo "building kine $KINE_VERSION into $OUT (once)"
  GOBIN=$OUT $GO install "github.com/k3s-io/kine@$KINE_VERSION"
fi
if [ ! -x "$OUT/containerd-shim-runc-v2" ]; then
  echo "building containerd-shim-runc-v2 $CONTAINERD_VERSION into $OUT (once)"
  GOBIN=$OUT $GO install "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION"
fi
