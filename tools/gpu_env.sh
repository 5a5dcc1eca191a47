# Sourced by tools/gpu_check.sh and tools/gpu_export_check.sh after they set OUT's default:
# picks the Python (the project's venv, else python3), creates $OUT and records the GPU in it.
set -u
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia_smi.txt"
