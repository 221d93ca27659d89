#!/usr/bin/env bash
# Builds daprd, placement, scheduler and sentry from the Go module registry into $2 (default
# .cache/dapr/bin), once per Dapr version. Binaries of the same version installed by the Dapr CLI
# (~/.dapr/bin, when it has all four) are used instead of building.
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
# Rebuild when the version, the wrapper module (component set, requirements) or the list of
# binaries changes (a cache from before sentry was added has another fingerprint, so it rebuilds).
binaries="daprd placement scheduler sentry"
fingerprint="$version [$binaries] $(cat "$root/dapr/runtime/go.mod" "$root/dapr/runtime/cmd/daprd/components.go" | sha256sum | cut -c1-16)"
all_built=true
for binary in $binaries; do [[ -x $out/$binary ]] || all_built=false; done
if $all_built && [[ -f $stamp && $(cat "$stamp") == "$fingerprint" ]]; then
  exit 0
fi
cli=$HOME/.dapr/bin
cli_complete=true
for binary in $binaries; do [[ -x $cli/$binary ]] || cli_complete=false; done
if $cli_complete && [[ $("$cli/daprd" --version 2>/dev/null) == "$version" ]]; then
  echo "using the Dapr CLI's binaries $version ($cli)"
  for binary in $binaries; do ln -sf "$cli/$binary" "$out/$binary"; done
  echo "$fingerprint" > "$stamp"
  exit 0
fi
command -v go >/dev/null || { echo "go (>= 1.26) is required to build daprd" >&2; exit 1; }
echo "building the Dapr $version runtime ($binaries); a cold build takes 5-10 minutes ..."
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
go build -modfile="$build/go.mod" -mod=mod -trimpath -ldflags "$ldflags" -o "$out/" $(printf './cmd/%s ' $binaries)
echo "$fingerprint" > "$stamp"
echo "built in $(( $(date +%s) - start ))s: daprd $(du -h "$out/daprd" | cut -f1)"
