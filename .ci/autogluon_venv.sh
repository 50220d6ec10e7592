#!/usr/bin/env bash
# Build AutoGluon MultiModal's own venv (it pins torch<2.14, so it cannot share bench's).
# Idempotent: a venv built completely before is reused. Usage:
#   bash .ci/autogluon_venv.sh [DIR]     (default ~/.cache/bench/autogluon-venv)
# Progress goes to stderr; the last line on stdout is the venv's python, for
#   export BENCH_AUTOGLUON_PYTHON="$(bash .ci/autogluon_venv.sh DIR | tail -n 1)"
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
DIR="${1:-${HOME}/.cache/bench/autogluon-venv}"
PY="${BENCH_PYTHON:-.venv/bin/python}"
# The requirements and the steps live in bench/peers/venv.py (also used by `bench peer`).
"$PY" -m bench.peers.venv "$DIR"
