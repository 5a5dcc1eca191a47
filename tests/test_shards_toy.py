"""The toy dataset sharded, served over loopback HTTP, trained on and tested, beside the same
recipe from its lists (``sfvideo.bench.toy_shards``, what ``tools/toy_shards_check.py`` runs at
full scale): both runs finish and score every held-out video, and the comparison is written."""

import json

import pytest

from sfvideo.cli.toy_shards_check import main

pytestmark = pytest.mark.slow


def test_toy_lists_vs_shards_over_http(tmp_path):
    from sfvideo.data import toy

    toy.make_toy_dataset(tmp_path / "toy", train_per_class=2, val_per_class=1, size=32, workers=1)
    opts = ["MODEL.ARCH", "video_test", "DATA.NUM_FRAMES", "4", "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE",
            "32", "DATA.TRAIN_JITTER_SCALES", "[32, 36]", "DATA.NUM_WORKERS", "0", "TRAIN.EVAL_PERIOD", "0",
            "SOLVER.MAX_EPOCH", "1", "SOLVER.MIN_STEPS", "0", "NUM_THREADS", "1"]
    status = main(["--data", str(tmp_path / "toy"), "--out", str(tmp_path / "check"), "--max-count", "4",
                   "--tolerance", "100", *opts])
    summary = json.loads((tmp_path / "check" / "comparison.json").read_text())
    assert status == 0 and summary["num_videos"] == [8, 8]
    assert summary["difference"] == pytest.approx(summary["shards_over_http_top1"] - summary["lists_top1"])
    shards_run = tmp_path / "check" / "shards_run"
    cfg = (shards_run / "config.yaml").read_text()
    assert "FORMAT: shards" in cfg and "TRAIN_SHARDS: http://127.0.0.1:" in cfg
    assert json.loads((shards_run / "test_results.json").read_text())["failed_videos"] == []
    assert len(list((tmp_path / "check" / "shards").glob("train-*.tar"))) == 4  # 16 videos, 4 a shard
