#!/bin/sh
# Make torchcodec work: it loads FFmpeg's shared libraries (major versions 4 to 8) at import.
# Called by `make install` (so by `make test` and `make demo`) with the venv's python as $1.
#   - FFmpeg libraries present: nothing to install.
#   - missing, and we are root with apt-get: install the distribution's ffmpeg (pulls the libs).
#   - otherwise: print one line saying torchcodec is skipped and why; the other decoders
#     (decord, PyAV: both bundle their own FFmpeg) still work and DATA.DECODER auto uses them.
# Ends by checking that torchcodec really imports with its native libraries.
PY="${1:-python3}"
have_libs() { ldconfig -p 2>/dev/null | grep -q 'libavcodec\.so\.\(5[89]\|6[0-2]\)'; }

if ! have_libs; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing the system FFmpeg libraries for torchcodec (apt-get install -y ffmpeg) ..."
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null) \
            || { echo "torchcodec skipped: apt-get install ffmpeg failed; DATA.DECODER auto will use decord/PyAV"; exit 0; }
    else
        echo "torchcodec skipped: FFmpeg 4-8 shared libraries not found and cannot install them (need root and apt-get; run: sudo apt-get install ffmpeg); DATA.DECODER auto will use decord/PyAV"
        exit 0
    fi
fi
if ! "$PY" -c "from torchcodec.decoders import VideoDecoder" 2>/dev/null; then
    reason=$("$PY" -c "from torchcodec.decoders import VideoDecoder" 2>&1 | tail -n 1)
    echo "torchcodec skipped: it does not load ($reason); DATA.DECODER auto will use decord/PyAV"
fi
exit 0
