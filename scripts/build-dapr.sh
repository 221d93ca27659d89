#!/usr/bin/env bash
# Builds daprd, placement and scheduler from the Go module registry into $2 (default
# .cache/dapr/bin), once per Dapr version. A daprd of the same version installed by the Dapr CLI
# (~/.dapr/bin/daprd) is used instead of building.
#
# Upstream's cmd/daprd/components package panics at start-up unless it is built with the
# stablecomponents/allcomponents tags, which link every cloud SDK (and need modules this registry
# does not serve). Lore registers its own component set (dapr/runtime/cmd/daprd/components.go), so
# the build uses a copy of the dapr module, from the Go module cache, with that one guard file emptied.
set -euo pipefail
version=${1:?usage: build-dapr.sh VERSION [OUT_DIR]}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${2:-$root/.cache/dapr/bin}
stamp=$out/.version
mkdir -p "$out"
# Rebuild when the version or the wrapper module (component set, requirements) changes.
fingerprint="$version $(cat "$root/dapr/runtime/go.mod" "$root/dapr/runtime/cmd/daprd/components.go" | sha256sum | cut -c1-16)"
if [[ -x $out/daprd && -f $stamp && $(cat "$stamp") == "$fingerprint" ]]; then
  exit 0
fi
cli_daprd=$HOME/.dapr/bin/daprd
if [[ -x $cli_daprd ]] && [[ $("$cli_daprd" --version 2>/dev/null) == "$version" ]]; then
  echo "using the Dapr CLI's daprd $version ($cli_daprd)"
  ln -sf "$cli_daprd" "$out/daprd"
  echo "$fingerprint" > "$stamp"
  exit 0
fi
command -v go >/dev/null || { echo "go (>= 1.26) is required to build daprd" >&2; exit 1; }
echo "building the Dapr $version runtime (daprd, placement, scheduler); a cold build takes 5-10 minutes ..."
start=$(date +%s)
runtime=$root/dapr/runtime
build=$root/.cache/dapr/build
src=$build/dapr@v$version
mkdir -p "$build"
cd "$runtime"
if [[ ! -d $src ]]; then
  moddir=$(go mod download -json "github.com/dapr/dapr@v$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  rm -rf "$src.tmp" && cp -r "$moddir" "$src.tmp" && chmod -R u+w "$src.tmp"
  printf '// Emptied by Lore'"'"'s build-dapr.sh: components are registered by the wrapper module.\npackage components\n' \
    > "$src.tmp/cmd/daprd/components/zz_notag.go"
  mv "$src.tmp" "$src"
fi
cp go.mod "$build/go.mod"
cp go.sum "$build/go.sum"
echo "replace github.com/dapr/dapr v$version => $src" >> "$build/go.mod"
ldflags="-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=$version -X github.com/dapr/dapr/pkg/buildinfo.gitversion=v$version"
go build -modfile="$build/go.mod" -mod=mod -trimpath -ldflags "$ldflags" -o "$out/" ./cmd/daprd ./cmd/placement ./cmd/scheduler
echo "$fingerprint" > "$stamp"
echo "built in $(( $(date +%s) - start ))s: daprd $(du -h "$out/daprd" | cut -f1)"
