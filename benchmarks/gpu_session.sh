#!/usr/bin/env bash
# Every GPU check in one run, for a machine with an NVIDIA GPU that has torch, onnxruntime and
# pytest but may lack PyAV: the GPU tests (`pytest -m gpu`), then benchmarks/gpu_models.py
# (model-only latency per backend and dtype at 360p, 720p and 1080p, and 1080p file throughput
# against decode + encode alone). About 8 minutes on an H200, most of it compiling.
#
#   bash benchmarks/gpu_session.sh [OUT_DIR]
#
# Wheels found in .whl/ are installed first (PyAV is the one such a machine usually lacks:
# `pip download --no-deps --only-binary=:all: --python-version 3.12 --platform
# manylinux_2_28_x86_64 -d .whl av==18.1.0`, 36 MB). The shared data the training test needs
# is read from $STYLECAST_SHARED (a copy of ../shared/weights and a few photos of
# ../shared/trainset and ../shared/media/styles); without it that test skips.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-session}}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 STYLECAST_CACHE=/tmp/stylecast-cache
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"

timeout 300 python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tee "$out/gpu-tests.log"
(cd benchmarks && timeout 420 python3 gpu_models.py "${@:2}") 2>&1 | tee "$out/gpu-models.md"
