#!/usr/bin/env bash
# The GPU checks as one short script for a CUDA machine that cannot reach a package registry
# (the device tool runs it from the repository root; under 10 minutes on one GPU): check what
# is needed, install the missing Python packages from wheels carried beside this script, then
# the `gpu` tests, the probe-honesty table and the throughput lines on CUDA. Every figure goes
# to a file in ${OUT:-benchmarks/results/gpu_check}/ (7 files), each step's exit status to
# summary.txt; the script exits non-zero when a step failed.
#
#   bash benchmarks/gpu_check.sh            # on the GPU machine
#   bash benchmarks/gpu_check.sh --dry-run  # anywhere: what is missing, how to fetch it, the plan
#
# The GPU machine's python3 already holds torch with CUDA and most of the stack
# (benchmarks/gpu_image.txt, checked there first). The rest (benchmarks/gpu_wheels.txt) travels
# as wheels in benchmarks/wheels/ (ignored by git; about 10 MB). Fetch them once, on a machine
# with the registries, for the GPU machine's Python (3.12) and platform:
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 -d benchmarks/wheels -r benchmarks/gpu_wheels.txt
#
# (py3-none-any wheels fit too; a package with no wheel on the index: build one with
# `pip wheel --no-deps -w benchmarks/wheels NAME==VERSION`.) On a GPU machine
# without torch, add torch==2.14.1 torchvision==0.29.1 and their nvidia-* wheels to that list
# and move them out of gpu_image.txt. Then carry benchmarks/wheels with the working tree.
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS="${GPU_CHECK_WHEELS:-benchmarks/wheels}"
PY="${GPU_CHECK_PYTHON:-python3}"
TAG="${GPU_CHECK_PYTHON_TAG:-cp312}"
OUTDIR="${OUT:-benchmarks/results/gpu_check}"
SITE="${TMPDIR:-/tmp}/bench-gpu-site"

plan() {
  cat <<PLAN
plan (one GPU, each step under its own time limit, 9 minutes at most in all):
  1. check    ${PY}: gpu_image.txt installed, CUDA visible; ${WHEELS}: gpu_wheels.txt ($TAG)
  2. install  ${WHEELS}/*.whl offline into ${SITE} (pip --no-index --no-deps)     <= 1 min
              -> ${OUTDIR}/install.log
  3. device   torch version and GPU name                 -> ${OUTDIR}/device.txt
  4. tests    pytest -m gpu tests/e2e/test_gpu.py -rs     -> ${OUTDIR}/gpu_tests.txt   <= 4.5 min
  5. probe    benchmarks/probe_honesty.py --device cuda   -> ${OUTDIR}/probe_honesty.txt  <= 1.5 min
  6. speed    benchmarks/throughput.py --device cuda      -> ${OUTDIR}/throughput_cuda.txt <= 2 min
  summary of each step's exit status                      -> ${OUTDIR}/summary.txt
PLAN
}

need_files() {
  local missing=0
  for f in tests/e2e/test_gpu.py benchmarks/probe_honesty.py benchmarks/throughput.py \
           benchmarks/gpu_deps.py benchmarks/gpu_wheels.txt benchmarks/gpu_image.txt; do
    [ -f "$f" ] || { echo "missing file: $f"; missing=1; }
  done
  return "$missing"
}

fetch_hint() {
  echo "fetch the wheels on a machine with the registries (see the top of $0):"
  sed -n '/^#   python3 -m pip download/,/gpu_wheels.txt$/p' "$0" | sed 's/^#//'
}

if [ "${1:-}" = "--dry-run" ]; then
  ok=0
  command -v "$PY" >/dev/null || { echo "missing: $PY"; ok=1; }
  need_files || ok=1
  "$PY" benchmarks/gpu_deps.py --wheels "$WHEELS" --python-tag "$TAG" || { fetch_hint; ok=1; }
  echo "taken as the GPU image's (checked on the machine): $(grep -v '^#' benchmarks/gpu_image.txt | tr '\n' ' ')"
  plan
  [ "$ok" -eq 0 ] && echo "dry run: everything the check needs is here" \
    || echo "dry run: something is missing (above)"
  exit "$ok"
fi

mkdir -p "$OUTDIR"
summary="$OUTDIR/summary.txt"
: >"$summary"
step() {  # step NAME SECONDS FILE CMD...: run CMD under a time limit, output to FILE and here
  local name="$1" limit="$2" file="$3"; shift 3
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$file"
  local rc=${PIPESTATUS[0]}
  echo "$name rc=$rc seconds=$((SECONDS - t0))" | tee -a "$summary"
  return "$rc"
}

plan
need_files || exit 1
if ! "$PY" benchmarks/gpu_deps.py --wheels "$WHEELS" --python-tag "$TAG" --installed \
    | tee "$OUTDIR/check.txt"; then
  fetch_hint
  echo "check rc=1" >>"$summary"
  exit 1
fi
rm -rf "$SITE"
step install 60 "$OUTDIR/install.log" "$PY" -m pip install -q --no-index --no-deps --no-compile \
  --no-cache-dir --target "$SITE" "$WHEELS"/*.whl || exit 1
export PYTHONPATH="$SITE:$PWD:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
step device 60 "$OUTDIR/device.txt" "$PY" -c \
  "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))"
step tests 270 "$OUTDIR/gpu_tests.txt" "$PY" -m pytest -q -m gpu -rs -p no:cacheprovider \
  tests/e2e/test_gpu.py
step probe 90 "$OUTDIR/probe_honesty.txt" "$PY" benchmarks/probe_honesty.py --device cuda
step speed 120 "$OUTDIR/throughput_cuda.txt" "$PY" benchmarks/throughput.py --device cuda \
  --repeats 3
! grep -v " rc=0 " "$summary"
