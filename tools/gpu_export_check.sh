#!/bin/sh
# Deployment checks on a machine with an NVIDIA GPU.
#   sh tools/gpu_export_check.sh          # results in ${OUT:-gpu_export_out}/
# 1. the export / timeline / onnxruntime tests on that machine's stack,
# 2. tools/gpu_export_check.py (sfvideo/bench/gpu_export.py): video_tiny 32x224^2 eager inference clips/s fp32 vs bf16 at batch 1 and 32
#    (+ bf16 logit gap), and the ONNX export run by onnxruntime's CUDA provider when installed
#    (pip install onnxruntime-gpu): parity with PyTorch and clips/s at batch 1 and 32.
# Each step has a time limit so that one hang cannot eat the machine's time.
OUT="${OUT:-gpu_export_out}"
. tools/gpu_env.sh
timeout 300 "$PY" -m pytest -q tests/test_export.py tests/test_deploy.py 2>&1 | tail -n 5 | tee "$OUT/pytest.txt"
timeout 420 "$PY" tools/gpu_export_check.py --json "$OUT/gpu_export_check.json" 2>&1 | tee "$OUT/gpu_export_check.txt"
