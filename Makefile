# sfvideo: two set-up-and-go commands.
#   make demo   install, build the toy dataset, train, test, predict, draw token RoIs (CPU, < 15 min)
#   make test   install and run the test suite
#   make test-fast  the tests not marked slow: the edit-test loop
#   make lint   ruff (pyflakes, import order, bugbear)
#   make docs   the documentation site (mkdocs build --strict) into site/
# CI (.ci/run) runs make lint, make docs, then make test.
#
# The environment lives in .venv. torch/torchvision come from PyPI as the standard pair
# (pytorchvideo needs torchvision, which only imports next to the standard torch build);
# a machine-wide pip "find-links" pointing at a CPU-only torch wheel is bypassed on purpose.
# torchcodec is pinned to the release built against that torch; it needs FFmpeg's shared
# libraries, which tools/ensure_ffmpeg.sh installs when missing and allowed (root + apt-get),
# or says in one line why torchcodec is skipped (decord/PyAV then serve DATA.DECODER auto).

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
TORCH_PIN = torch==2.13.0 torchvision==0.28.0 torchcodec==0.17.0
STAMP   = $(VENV)/.installed

.PHONY: install ffmpeg system-packages lint docs test test-fast demo clean-venv

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null $(PY) -m pip install -q --disable-pip-version-check $(TORCH_PIN)
	env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null $(PY) -m pip install -q --disable-pip-version-check -e ".[dev]" $(TORCH_PIN)
	touch $(STAMP)

# Debian packages the tests start on loopback: COMMAND_OR_FILE:PACKAGES (tools/ensure_system_packages.sh).
# The RTSP server of tests/test_stream.py: gst-rtsp-server under the system python3 (python3-gi),
# a live H.264 test pattern (videotestsrc: base, x264enc: ugly, rtph264pay: good).
GST_RTSP = python3-gi,gir1.2-gst-rtsp-server-1.0,gstreamer1.0-plugins-base,gstreamer1.0-plugins-good,gstreamer1.0-plugins-ugly
# chromium: the app's browser test; nginx: the shards' HTTP server; ffmpeg: serves the stream tests' sources.
SYSTEM_PACKAGES ?= /usr/bin/chromium:chromium /usr/sbin/nginx:nginx ffmpeg:ffmpeg \
	/usr/share/doc/gir1.2-gst-rtsp-server-1.0/copyright:$(GST_RTSP) \
	/usr/share/doc/gstreamer1.0-plugins-ugly/copyright:$(GST_RTSP)

install: $(STAMP) ffmpeg system-packages

system-packages:
	@sh tools/ensure_system_packages.sh $(SYSTEM_PACKAGES)

ffmpeg: $(STAMP)
	@sh tools/ensure_ffmpeg.sh $(PY)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# Two pytest-xdist workers, one test file each at a time (module fixtures built once): many tests
# wait on subprocesses, servers and sockets, so two files share two cores well.
TEST_WORKERS ?= 2
PYTEST = $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test: $(STAMP) ffmpeg system-packages
	$(PYTEST) tests

test-fast: $(STAMP) ffmpeg system-packages
	$(PYTEST) -m "not slow" tests

demo: $(STAMP) ffmpeg
	$(PY) tools/demo.py --out demo_output

clean-venv:
	rm -rf $(VENV)
