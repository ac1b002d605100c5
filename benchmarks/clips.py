"""The shared clips the temporal benchmarks read (beside this script: `from clips import ...`)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from stylecast.core.errors import InputError
from stylecast.realtime.video import VideoReader

SHARED_CLIPS = Path(__file__).resolve().parents[2] / "shared/media/video"


def first_frames(clip: Path, count: int) -> list[np.ndarray]:
    """The first `count` frames of `clip` (H x W x 3 uint8 RGB); at least two, for frame pairs."""
    reader = VideoReader(clip)
    try:
        frames = list(itertools.islice(reader.rgb_frames(), count))
    finally:
        reader.close()
    if len(frames) < 2:
        raise InputError(f"{clip}: need at least two frames")
    return frames
