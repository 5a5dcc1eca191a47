"""`sfvideo app`: the Gradio page on a free loopback port, used through gradio_client (the top-5 of
`sfvideo predict`, a timeline, the RoI GIF, refused uploads answered with a sentence) and through a
real browser (Playwright driving Debian's Chromium: upload, wait for the label, screenshot), with
no connection leaving the machine."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch

pytest.importorskip("gradio", reason="the app extra is not installed: pip install \"sfvideo[app]\"")

from engine_helpers import CLASS_NAMES, free_port, make_video_dataset, tiny_opts  # noqa: E402
from sfvideo.app.analysis import InputRejected, check_upload, example_videos, load_app_model  # noqa: E402
from sfvideo.app.ui import AppOptions, Handlers, launch_app  # noqa: E402
from sfvideo.checkpoint import config_from_checkpoint, save_pretrained  # noqa: E402
from sfvideo.config import load_config  # noqa: E402
from sfvideo.models import build_model  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
# Chromium's own background traffic off; a profile of its own per run (launch_persistent_context).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MAX_MB = 1.0
TIMEOUT_MS = 240_000  # the analysis of one tiny video, on a loaded 2-core machine


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="module")
def connections():
    """Every address this process connects to or looks up while the module's app runs. The test's
    gradio_client is offline as a client on a machine without a network is told to be
    (HF_HUB_OFFLINE=1: no agent registry or telemetry fetched for its headers; analytics off)."""
    from huggingface_hub import constants

    seen: list[str] = []
    patch = pytest.MonkeyPatch()
    patch.setattr(constants, "HF_HUB_OFFLINE", True)
    connect, connect_ex, getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def record(address):
        if isinstance(address, tuple):
            seen.append(str(address[0]))

    patch.setattr(socket.socket, "connect", lambda self, a: (record(a), connect(self, a))[1])
    patch.setattr(socket.socket, "connect_ex", lambda self, a: (record(a), connect_ex(self, a))[1])
    patch.setattr(socket, "getaddrinfo", lambda host, *a, **k: (seen.append(str(host)), getaddrinfo(host, *a, **k))[1])
    yield seen
    patch.undo()


@pytest.fixture(scope="module")
def served(tmp_path_factory, connections):
    """A model directory of video_test, short videos, and the app serving it on a free port with
    the default examples (toy clips, made into a temporary sfvideo cache)."""
    tmp = tmp_path_factory.mktemp("app")
    data = make_video_dataset(tmp / "videos", num_train=1, num_val=3, frames=24)
    cfg = load_config("k400_tiny.yaml", tiny_opts(data, tmp / "out"))
    torch.manual_seed(5)
    save_pretrained(build_model(cfg), tmp / "model", cfg, class_names=CLASS_NAMES)
    run_cfg, names = config_from_checkpoint(tmp / "model", ["DEVICE", "cpu"])
    app = load_app_model(run_cfg, names, log=lambda s: None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SFVIDEO_CACHE", str(tmp / "cache"))
        examples = example_videos(None, log=lambda s: None)
    options = AppOptions(port=free_port(), examples=examples, max_mb=MAX_MB)
    page = launch_app(app, options, block=False, quiet=True)
    yield {"tmp": tmp, "data": data, "model": tmp / "model", "app": app, "options": options, "page": page,
           "url": f"http://127.0.0.1:{options.port}/"}
    page.close()
    assert connections and all(_is_loopback(h) for h in connections), connections  # no call leaves the machine


def _client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, analytics_enabled=False)


def _predict_top5(model_dir: Path, video: Path, capsys) -> list[tuple[str, float]]:
    from sfvideo.cli import predict

    predict.main(["--checkpoint", str(model_dir), str(video)])
    rows = re.findall(r"^\s+\d+\. (\S+)\s+([\d.]+)%", capsys.readouterr().out, flags=re.M)
    return [(name, float(pct)) for name, pct in rows]


def test_api_gives_predicts_top5_a_timeline_and_the_rois(served, capsys):
    from gradio_client import handle_file
    from PIL import Image

    video = served["data"] / "val" / "v01.mp4"
    want = _predict_top5(served["model"], video, capsys)
    client = _client(served["url"])
    label, status, rois, timeline_png, windows = client.predict(handle_file(str(video)), api_name="/classify")
    got = [(c["label"], round(100 * c["confidence"], 2)) for c in label["confidences"]]
    assert len(want) == 4 and got == want
    assert status.startswith("**v01.mp4**") and "timeline of" in status
    gif = Image.open(rois)
    assert gif.format == "GIF" and gif.n_frames == served["app"].runner.protocol["num_frames"]
    assert Path(timeline_png["value"]).read_bytes()[:4] == b"\x89PNG" and timeline_png["visible"]
    rows = windows["value"]["data"]
    assert rows and all(row[2] in CLASS_NAMES for row in rows) and rows[-1][1] == pytest.approx(0.8)


def test_analyses_share_one_queue_of_the_given_concurrency(served):
    classify = [fn for fn in served["page"].fns.values() if fn.name == "classify"]
    assert len(classify) == 2  # the button (the API endpoint) and a new upload
    assert {fn.concurrency_id for fn in classify} == {"analysis"}
    assert {fn.concurrency_limit for fn in classify} == {"default"}  # the queue's default: --concurrency
    assert served["page"]._queue.default_concurrency_limit == served["options"].concurrency == 1
    assert served["page"].config["app_id"] and served["options"].host == "127.0.0.1"


def test_api_answers_a_corrupt_upload_with_a_sentence(served):
    from gradio_client import handle_file

    bad = served["tmp"] / "holiday.mp4"
    bad.write_bytes(os.urandom(4096))
    label, status, rois, timeline_png, _ = _client(served["url"]).predict(handle_file(str(bad)), api_name="/classify")
    assert status.startswith("**Not analysed:** holiday.mp4 is not a video this app can read")
    assert "Traceback" not in status and str(served["tmp"]) not in status and "/tmp/gradio" not in status
    assert not label and rois is None and not timeline_png["visible"]


def test_uploads_over_the_limits_are_refused(served):
    import httpx
    from gradio_client import handle_file

    big = served["tmp"] / "big.mp4"
    big.write_bytes(b"\0" * int(1.5 * MAX_MB * 2**20))
    with pytest.raises(ValueError, match="exceeds the maximum file size"):
        _client(served["url"]).predict(handle_file(str(big)), api_name="/classify")
    with big.open("rb") as f:  # a client that does not check: the server refuses the upload itself
        answer = httpx.post(served["url"] + "gradio_api/upload", files={"files": ("big.mp4", f)}, timeout=60)
    assert answer.status_code == 413
    with pytest.raises(InputRejected, match="The file is 1.5 MB; this app takes videos up to 1 MB"):
        check_upload(big, MAX_MB, 600)
    video = served["data"] / "val" / "v00.mp4"
    with pytest.raises(InputRejected, match=r"v00.mp4 lasts 0.8 s; this app takes videos up to 0.5 s"):
        check_upload(video, MAX_MB, 0.5)
    handlers = Handlers(served["app"], AppOptions(max_seconds=0.5), served["tmp"] / "work")
    (served["tmp"] / "work").mkdir(exist_ok=True)
    assert "lasts 0.8 s" in handlers.classify(str(video))[1]


def test_default_examples_are_held_out_toy_clips(served, tmp_path):
    from sfvideo.data.toy import CLASS_NAMES as TOY_CLASSES

    videos = served["options"].examples
    assert [p.parent.name for p in videos] == list(TOY_CLASSES) and all(p.is_file() for p in videos)
    assert all(p.is_relative_to(served["tmp"] / "cache" / "app-examples" / "videos" / "val") for p in videos)
    with pytest.raises(FileNotFoundError, match="no video files"):
        example_videos(tmp_path)


# ------------------------------------------------------------------------------------ a real browser
def _browser(playwright, profile: Path):
    """Debian's Chromium under Playwright, or a skip saying why it cannot run here."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM}: `make system-packages` installs Debian's chromium package")
    try:
        return playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1000})
    except Exception as err:  # a browser that cannot start here (libraries, sandbox): the reason is printed
        pytest.skip(f"Chromium at {CHROMIUM} does not start under Playwright: {str(err).splitlines()[0]}")


def test_browser_uploads_a_video_and_shows_the_label(served, tmp_path, capsys):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the app extra)")
    video = served["options"].examples[1]  # a toy clip (moving right), 112 x 112 pixels
    want = _predict_top5(served["model"], video, capsys)[0][0]
    requests: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = _browser(playwright, tmp_path / "profile")
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.goto(served["url"])
            page.locator("#video input[type=file]").set_input_files(str(video))
            label = page.locator("#top5 [data-testid=label-output-value]")
            label.wait_for(state="visible", timeout=TIMEOUT_MS)
            page.locator("#rois img").wait_for(state="visible", timeout=TIMEOUT_MS)
            page.locator("#timeline img").wait_for(state="visible", timeout=TIMEOUT_MS)
            shown = label.inner_text().strip()
            shot = page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
        finally:
            browser.close()
    assert shown == want
    assert shot[:4] == b"\x89PNG"
    if os.environ.get("SFVIDEO_APP_SCREENSHOT"):  # where the docs' picture is made
        shutil.copy(tmp_path / "app.png", os.environ["SFVIDEO_APP_SCREENSHOT"])
    hosts = {urlparse(u).hostname for u in requests if urlparse(u).scheme not in ("data", "blob")}
    assert hosts == {"127.0.0.1"}, sorted(set(requests))
