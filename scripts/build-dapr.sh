#!/usr/bin/env bash
# Builds daprd, placement and scheduler from the Go module registry into $2 (default
# .cache/dapr/bin), once per Dapr version. A daprd of the same version installed by the Dapr CLI
# (~/.dapr/bin/daprd) is used instead of building.
set -euo pipefail
version=${1:?usage: build-dapr.sh VERSION [OUT_DIR]}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${2:-$root/.cache/dapr/bin}
stamp=$out/.version
mkdir -p "$out"
if [[ -x $out/daprd && -f $stamp && $(cat "$stamp") == "$version" ]]; then
  exit 0
fi
cli_daprd=$HOME/.dapr/bin/daprd
if [[ -x $cli_daprd ]] && [[ $("$cli_daprd" --version 2>/dev/null) == "$version" ]]; then
  echo "using the Dapr CLI's daprd $version ($cli_daprd)"
  ln -sf "$cli_daprd" "$out/daprd"
  echo "$version" > "$stamp"
  exit 0
fi
command -v go >/dev/null || { echo "go is required to build daprd (Go >= 1.26)" >&2; exit 1; }
echo "building Dapr $version runtime (daprd, placement, scheduler); the first build takes several minutes ..."
start=$(date +%s)
cd "$root/dapr/runtime"
ldflags="-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=$version -X github.com/dapr/dapr/pkg/buildinfo.gitversion=v$version"
GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$out/" ./cmd/daprd ./cmd/placement ./cmd/scheduler
echo "$version" > "$stamp"
echo "built in $(( $(date +%s) - start ))s: $(du -h "$out/daprd" | cut -f1) daprd"
