import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "official_sparseformer"

# The fixtures' "small" architecture (see tests/fixtures/official_sparseformer/README.md).
SMALL_ARCH = dict(conv_dim=16, num_tokens=9, num_points=9, widths=(64, 128, 128), repeats=(2, 1, 1), num_heads=64)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread, as the tools' subprocesses have (OMP_NUM_THREADS=1): float reductions then
    match theirs bit for bit (``pytest.mark.usefixtures("one_thread")``)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


# Generated once per session and only read: 8 training and 7 validation mp4s (``video_test``
# runs of 4 steps an epoch at batch 2), or 4 and 2 for tests that need a run but not its numbers.
@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> Path:
    from engine_helpers import make_video_dataset

    return make_video_dataset(tmp_path_factory.mktemp("videos"))


@pytest.fixture(scope="session")
def few_videos(tmp_path_factory) -> Path:
    from engine_helpers import make_video_dataset

    return make_video_dataset(tmp_path_factory.mktemp("few_videos"), num_train=4, num_val=2)
@pytest.fixture
def read_only_dir(tmp_path) -> Path:
    """An existing folder this process cannot create files in: a ``chmod 555`` folder, or for
    root (whom permissions do not stop) ``/sys/kernel``, which refuses new files to everyone."""
    import os

    if os.geteuid() != 0:
        folder = tmp_path / "read_only"
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    folder = Path("/sys/kernel")
    try:
        (folder / "sfvideo-probe").open("w").close()
    except OSError:
        yield folder
        return
    pytest.skip("no folder here refuses new files to root")
