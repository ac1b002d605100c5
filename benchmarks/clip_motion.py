"""How do the clips move? For each clip, the optical flow between consecutive frames (the same
DIS flow `stylecast eval temporal` warps with) and what is left of it after fitting one affine
motion to the whole frame: a camera's pan, tilt, roll or zoom is affine, objects moving on
their own are what is left. The temporal loss moves its crops by an affine warp, plus a smooth
random flow with `--temporal-flow`; this says which of the two the clips hold.

    python benchmarks/clip_motion.py [CLIPS...] [--frames 60]

Prints, per clip, the flow's length (pixels) and the left-over's at the 50th, 90th and 99th
percentiles of all pixels of all frame pairs.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
from clips import SHARED_CLIPS, first_frames  # beside this script

from stylecast.core.errors import InputError
from stylecast.evaluation.metrics import optical_flow

PERCENTILES = (50, 90, 99)


def non_affine_part(flow: np.ndarray, step: int = 8) -> np.ndarray:
    """H x W x 2 flow -> the flow minus its least-squares affine fit, on a grid `step` px apart
    (K x 2): the part no camera motion explains."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h:step, 0:w:step]
    positions = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)], axis=1)  # K x 3
    sampled = flow[::step, ::step].reshape(-1, 2)  # K x 2
    affine, *_ = np.linalg.lstsq(positions, sampled, rcond=None)  # 3 x 2
    return sampled - positions @ affine


def clip_motion(clip: Path, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Flow lengths and left-over lengths over the first `frames` frames of `clip`."""
    lengths, left_over = [], []
    for source, target in itertools.pairwise(first_frames(clip, frames)):
        flow = optical_flow(source, target)
        lengths.append(np.linalg.norm(flow, axis=2).ravel())
        left_over.append(np.linalg.norm(non_affine_part(flow), axis=1))
    return np.concatenate(lengths), np.concatenate(left_over)


def main() -> None:
    try:
        run()
    except InputError as exc:  # a missing or unreadable clip: one line
        raise SystemExit(f"clip_motion: {exc}") from None


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", nargs="*", type=Path, help="default: the clips in ../shared/media/video")
    parser.add_argument("--frames", type=int, default=60, help="frames from the start of each clip")
    args = parser.parse_args()
    clips = args.clips or sorted(p for p in SHARED_CLIPS.glob("*") if p.suffix in {".mp4", ".mkv"})
    if not clips:
        raise InputError(f"no clips given and none in {SHARED_CLIPS}")
    rows = []  # every clip is read before the table starts: a bad one leaves no partial table
    for clip in clips:
        lengths, left_over = clip_motion(clip, args.frames)
        cells = [f"{v:.2f}" for v in (*np.percentile(lengths, PERCENTILES), *np.percentile(left_over, PERCENTILES))]
        rows.append(f"| {clip.name} | {' | '.join(cells)} |")
    columns = " | ".join(f"p{p}" for p in PERCENTILES)
    print(f"| clip | flow, px: {columns} | after one affine fit: {columns} |")
    print(f"|---|{'---|' * 2 * len(PERCENTILES)}")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
