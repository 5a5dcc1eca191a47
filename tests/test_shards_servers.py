"""Shards served by real servers on loopback: HTTP (Debian's nginx, or Python's http.server where
nginx is missing) and S3 (moto's standalone server, with credentials checked). The training
stream over HTTP and S3 equals the local one, also when resumed mid-epoch; a shard that cannot be
fetched stops the run naming its URL after the retries; wrong credentials and a missing bucket
fail when the dataset is built, before any step."""

import json
import shutil
import subprocess
import sys

import pytest
import torch
from torch.utils.data import DataLoader

from engine_helpers import make_video_dataset
from sfvideo.bench.serve import http_server
from sfvideo.config import load_config
from sfvideo.data import build_dataset, collate_train
from sfvideo.data.shards.io import ShardFetchError
from shard_helpers import moto_binary, s3_server, shard_opts, write_shards

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_video_dataset(tmp_path_factory.mktemp("videos"), num_train=10)

PATTERN = "train-{000000..000003}.tar"



@pytest.fixture(scope="module")
def shard_dir(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    write_shards(data_dir, out, max_count=3)
    return out


def batches(data_dir, tmp_path, pattern, start=0, positions=None, **extra):
    cfg = load_config("k400_tiny.yaml", shard_opts(data_dir, tmp_path, pattern, **{"DATA.NUM_WORKERS": 2, **extra}))
    ds = build_dataset(cfg, "train")
    ds.start_epoch(0, 5, start, positions)
    return list(DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate_train, drop_last=True))


@pytest.fixture(scope="module")
def local(data_dir, shard_dir, tmp_path_factory):
    return batches(data_dir, tmp_path_factory.mktemp("o"), str(shard_dir / PATTERN))


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x["index"] == y["index"] and torch.equal(x["video"], y["video"])


def positions_after(local, k):
    """Each role's stream position after the first ``k`` batches."""
    pos = [0, 0]
    for b in local[:k]:
        for role, p in zip(b["stream_role"], b["stream_pos"]):
            pos[role] = max(pos[role], p)
    return pos


def test_http_shards_equal_local_ones_also_resumed(data_dir, shard_dir, local, tmp_path):
    with http_server(shard_dir, tmp_path / "http") as url:
        assert_same(batches(data_dir, tmp_path, f"{url}/{PATTERN}"), local)
        assert_same(batches(data_dir, tmp_path, f"{url}/train-shards.json", 3, positions_after(local, 3)), local[3:])


def test_http_shard_that_cannot_be_fetched_stops_the_run_naming_it(data_dir, shard_dir, tmp_path):
    served = tmp_path / "served"
    shutil.copytree(shard_dir, served)
    (served / "train-000002.tar").unlink()
    with http_server(served, tmp_path / "http") as url, pytest.raises(ShardFetchError) as err:
        batches(data_dir, tmp_path, f"{url}/{PATTERN}")
    assert f"{url}/train-000002.tar: cannot be fetched" in str(err.value)
    assert "FileNotFoundError" in str(err.value) and "gave up after 3 attempts" in str(err.value)


def test_training_command_names_the_shard_it_cannot_fetch(data_dir, shard_dir, tmp_path):
    from engine_helpers import ROOT, tool_env

    served = tmp_path / "served"
    shutil.copytree(shard_dir, served)
    (served / "train-000003.tar").unlink()
    with http_server(served, tmp_path / "http") as url:
        cmd = [sys.executable, str(ROOT / "tools" / "train_video.py"), "--cfg", "k400_tiny.yaml",
               *shard_opts(data_dir, tmp_path / "out", f"{url}/{PATTERN}", **{"DATA.NUM_WORKERS": 2})]
        proc = subprocess.run(cmd, cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"error: {url}/train-000003.tar: cannot be fetched (FileNotFoundError" in proc.stderr
    assert "Traceback" not in proc.stderr.split("error: ")[-1]


@pytest.fixture(scope="module")
def s3(shard_dir, tmp_path_factory):
    """moto's S3 on loopback checking credentials; shards uploaded to s3://shard-bucket/k/. Yields
    (endpoint, good credentials)."""
    if moto_binary() is None:
        pytest.skip("moto_server is not installed (pip install 'moto[server]', part of the dev extra)")
    import boto3

    with s3_server(tmp_path_factory.mktemp("moto"), auth_actions=3) as url:
        anyone = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
        iam = boto3.client("iam", **anyone)
        iam.create_user(UserName="trainer")
        key = iam.create_access_key(UserName="trainer")["AccessKey"]
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="trainer", PolicyName="all", PolicyDocument=json.dumps(policy))
        creds = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
                 "AWS_DEFAULT_REGION": "us-east-1"}
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"])
        s3.create_bucket(Bucket="shard-bucket")
        for f in shard_dir.iterdir():
            s3.upload_file(str(f), "shard-bucket", f"k/{f.name}")
        yield url, creds


def test_s3_shards_equal_local_ones_also_resumed(data_dir, local, s3, tmp_path, monkeypatch):
    url, creds = s3
    for k, v in creds.items():
        monkeypatch.setenv(k, v)
    opts = {"DATA.S3_ENDPOINT": url}
    assert_same(batches(data_dir, tmp_path, f"s3://shard-bucket/k/{PATTERN}", **opts), local)
    assert_same(batches(data_dir, tmp_path, f"s3://shard-bucket/k/{PATTERN}", 2, positions_after(local, 2), **opts),
                local[2:])


@pytest.mark.parametrize("case", ["wrong credentials", "missing bucket"])
def test_s3_access_problems_fail_when_the_dataset_is_built(data_dir, s3, tmp_path, monkeypatch, case):
    url, creds = s3
    for k, v in creds.items():
        monkeypatch.setenv(k, v)
    bucket = "shard-bucket"
    if case == "wrong credentials":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTAKEY")
    else:
        bucket = "no-such-bucket"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)  # the endpoint from the environment this time
    cfg = load_config("k400_tiny.yaml", shard_opts(data_dir, tmp_path, f"s3://{bucket}/k/{PATTERN}"))
    with pytest.raises(ShardFetchError) as err:
        build_dataset(cfg, "train")
    message = str(err.value)
    assert message.startswith(f"s3://{bucket}/k/train-shards.json: cannot be read")
    assert ("PermissionError" if case == "wrong credentials" else "FileNotFoundError") in message
    assert "AWS_ACCESS_KEY_ID" in message
