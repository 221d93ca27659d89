#!/usr/bin/env bash
# Fetches the jars of Apache Kafka (broker + KRaft controller, version pinned in tools/kafka/pom.xml)
# from Maven Central into $1 (default .cache/kafka/lib), once per pom. No registry ships a Kafka
# distribution tarball, but the broker runs from its Maven artifacts alone (~46 jars, ~42 MiB).
#
# Needs Java 17+ (Kafka 4 requires it for the broker) and Maven; on a bare Debian 12 CI machine
# (root) Maven is installed with apt, which also brings Debian's default JRE (17).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pom=$root/tools/kafka/pom.xml
out=${1:-$root/.cache/kafka/lib}
stamp=$out/.pom-sha256
fingerprint=$(sha256sum "$pom" | cut -c1-16)
if [[ -f $stamp && $(cat "$stamp") == "$fingerprint" ]]; then
  exit 0
fi
source "$root/scripts/ensure-maven.sh"
# `java -version` prints e.g. `openjdk version "17.0.15"` (or "1.8.0_x" for Java 8) on stderr.
java_major=$(java -version 2>&1 | sed -n 's/.* version "\([0-9]*\)[."].*/\1/p' | head -1)
if [[ -z $java_major || $java_major -lt 17 ]]; then
  echo "Kafka 4 needs Java 17 or later (found: ${java_major:-none})" >&2
  exit 1
fi
echo "fetching the Kafka jars from Maven Central into $out (~42 MiB, ~1 min) ..."
start=$(date +%s)
# Copy into a sibling directory and swap it in, so an interrupted fetch never looks complete.
tmp=$out.tmp
rm -rf "$tmp"
mkdir -p "$tmp"
mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies -DoutputDirectory="$tmp" -DincludeScope=runtime
echo "$fingerprint" > "$tmp/.pom-sha256"
rm -rf "$out"
mv "$tmp" "$out"
echo "Kafka jars ready: $(find "$out" -name '*.jar' | wc -l) jars, $(du -sh "$out" | cut -f1), $(($(date +%s) - start))s"
