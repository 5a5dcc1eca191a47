#!/bin/sh
# Run on a machine with an NVIDIA GPU.
#   sh tools/gpu_check.sh            # results in ${OUT:-gpu_check_out}/
# 1. FFmpeg libraries for torchcodec (installed when missing and allowed),
# 2. the CUDA-only tests (NVDEC decoding returns the frames asked for),
# 3. tools/gpu_check.py: NVDEC fidelity on barcoded files; video_tiny training step at 32x224^2,
#    fp32 and bf16, batch 16 and 32 (clips/s, peak memory, MFU); the full loader with 8 and 16
#    workers on the high-entropy set, CPU decoding vs NVDEC.
# Each step has a time limit so that one hang cannot eat the machine's time.
OUT="${OUT:-gpu_check_out}"
. tools/gpu_env.sh
sh tools/ensure_ffmpeg.sh "$PY" | tee "$OUT/ffmpeg.txt"
timeout 120 "$PY" -m pytest -q -rs tests/test_decoder_fidelity.py -k cuda 2>&1 | tail -n 5 | tee "$OUT/pytest_cuda.txt"
timeout 420 "$PY" tools/gpu_check.py nvdec train loader --steps 8 --clips 192 --json "$OUT/gpu_check.json" \
    2>&1 | tee "$OUT/gpu_check.txt"
