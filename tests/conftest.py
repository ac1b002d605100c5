"""Shared fixtures. Data from ../shared is optional: tests that need it skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("STYLECAST_SHARED", ROOT.parent / "shared"))
VGG_FILE = "weights/vgg19_imagenet_caffe_to_relu3_4.pth"

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session", autouse=True)
def cache_of_this_session(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Exports, backend choices and checkpoint keys go to a folder of the session's (CI names its
    own), never into the user's cache."""
    if not os.environ.get("STYLECAST_CACHE"):
        os.environ["STYLECAST_CACHE"] = str(tmp_path_factory.mktemp("cache"))


def shared_path(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared data folder is optional)")
    return path


@pytest.fixture(scope="session")
def vgg_weights() -> Path:
    env = os.environ.get("STYLECAST_VGG_WEIGHTS")
    if env and Path(env).is_file():
        return Path(env)
    return shared_path(VGG_FILE)


@pytest.fixture(scope="session")
def vgg19_full() -> Path:
    """The Caffe VGG19 to relu5_4 (Gatys' layers, the style-distance metric)."""
    return shared_path("weights/vgg19_imagenet_caffe.pth")


@pytest.fixture(scope="session")
def vgg16_weights() -> Path:
    """torchvision's VGG16 (Johnson's loss network, LPIPS-vgg's backbone)."""
    return shared_path("weights/vgg16_imagenet_torchvision.pth")


@pytest.fixture(scope="session")
def trainset() -> Path:
    return shared_path("trainset")


TEST_MODEL = "starry_night-small"


@pytest.fixture(scope="session")
def small_model() -> str:
    """A shipped small network (committed in models/zoo): real weights, fast on a CPU."""
    from stylecast.models.zoo import SHIPPED

    assert SHIPPED[TEST_MODEL].path.is_file(), "shipped model missing from models/zoo"
    return TEST_MODEL


@pytest.fixture(scope="session")
def demo_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 s of the generated scene at 160x96, 30 fps, with an AAC audio track."""
    from stylecast.realtime.demo import write_demo_clip

    path = tmp_path_factory.mktemp("clips") / "demo.mp4"
    write_demo_clip(path, seconds=1.0, width=160, height=96, fps=30)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def assert_frames_in_order(frames: list[np.ndarray], reference: list[np.ndarray], tolerance: float) -> None:
    """Each frame is nearer its own counterpart in `reference` than that one's neighbours (none
    swapped, dropped or repeated) and within `tolerance` grey levels of it on average: two runs
    of the same frames may differ by a level or so (thread counts, the encoder's rate control)."""
    assert len(frames) == len(reference)
    for i, frame in enumerate(frames):
        distance = {
            j: np.abs(frame.astype(int) - reference[j].astype(int)).mean()
            for j in (i - 1, i, i + 1)
            if 0 <= j < len(reference)
        }
        assert min(distance, key=distance.get) == i and distance[i] < tolerance, (i, distance)


def train_on_two_ranks(argv: list[str], out: Path) -> None:
    """`stylecast <argv>` under torchrun with two CPU processes (gloo), writing `out`: the run
    succeeds and both ranks end with the same weights (their gradients were averaged: each rank
    trained on other crops)."""
    import subprocess
    import sys

    from stylecast.models.checkpoint import load_checkpoint

    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "stylecast.cli",
    ]
    # gloo talks over the loopback interface only; one thread per process on a 2-core machine
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "MASTER_ADDR": "127.0.0.1"}
    proc = subprocess.run(
        cmd + argv, capture_output=True, text=True, timeout=300, env=env, cwd=str(Path(__file__).parent.parent)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    training = load_checkpoint(out).training
    assert training["world_size"] == 2
    first, second = training["rank_checksums"]
    assert first == second
