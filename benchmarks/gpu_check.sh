#!/usr/bin/env bash
# The GPU checks as one short script, for a machine with CUDA (the device tool runs it from the
# repository root): install, the `gpu` tests, then the throughput lines on CUDA.
# Writes what it measured to ${OUT:-gpu_check}/.
set -uo pipefail
out="${OUT:-gpu_check}"
mkdir -p "$out"
python3 -m venv .venv-gpu && .venv-gpu/bin/pip install -q -e ".[dev]" >"$out/install.log" 2>&1
.venv-gpu/bin/python -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" \
  | tee "$out/device.txt"
.venv-gpu/bin/pytest -q -m gpu -rs tests/e2e/test_gpu.py 2>&1 | tee "$out/gpu_tests.txt"
.venv-gpu/bin/python benchmarks/throughput.py --device cuda --repeats 3 2>&1 | tee "$out/throughput_cuda.txt"
