"""Where on a clip does a stylizer's flicker come from? The warping error of `stylecast eval
temporal` (the same DIS flow, occlusion check and per-pixel error), split by what the input
shows at each pixel: still or moving (flow of at most 0.5 px, or more), and flat or textured (the
grey level's standard deviation over the 9 x 9 pixels around it: under 3, 3 to 10, 10 and
more grey levels). A flicker that sits on flat, still pixels is the network's answer to the
noise of a still camera (the flat-scene term's business); one on moving pixels is motion's.

    python benchmarks/flicker_regions.py CLIP [--models starry_night-small ...] [--frames 60]
        [--threads N]

Prints the share of the visible pixels in each region, then per model (the input first: the
floor) its warping error over all visible pixels of all pairs, and per region the share of that
error and the region's mean error over the input's own there (its gain).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from clips import SHARED_CLIPS, first_frames  # beside this script

from stylecast.core.errors import InputError
from stylecast.core.machine import cpu_name
from stylecast.evaluation.metrics import PairErrors, pair_errors
from stylecast.realtime.stylizer import Stylizer

REGIONS = ("still", "moving", "flat", "some texture", "textured")


@dataclass
class RegionSums:
    stylized: float = 0.0  # summed per-pixel squared error of the stylized video
    input: float = 0.0  # the same for the input video
    pixels: int = 0


def local_contrast(frame: np.ndarray, window: int = 9) -> np.ndarray:
    """H x W x 3 uint8 -> H x W: the grey level's standard deviation over a window around each pixel."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mean = cv2.blur(grey, (window, window))
    return np.sqrt(np.maximum(cv2.blur(grey * grey, (window, window)) - mean * mean, 0))


def regions(pair: PairErrors) -> dict[str, np.ndarray]:
    """Each region's visible pixels, H x W bool."""
    moving = np.linalg.norm(pair.backward, axis=2) > 0.5
    contrast = local_contrast(pair.frame)
    masks = {
        "still": ~moving,
        "moving": moving,
        "flat": contrast < 3,
        "some texture": (contrast >= 3) & (contrast < 10),
        "textured": contrast >= 10,
    }
    return {name: mask & pair.visible for name, mask in masks.items()}


def error_sums(frames: list[np.ndarray], stylize: Callable[[np.ndarray], np.ndarray]) -> dict[str, RegionSums]:
    """Summed errors (the stylized video's and the input's) and pixel counts over all pairs, per
    region and over every visible pixel ("all")."""
    sums = {name: RegionSums() for name in ("all", *REGIONS)}
    for pair in pair_errors(frames, stylize):
        for name, mask in {"all": pair.visible, **regions(pair)}.items():
            sums[name].stylized += float(pair.stylized[mask].sum())
            sums[name].input += float(pair.input[mask].sum())
            sums[name].pixels += int(mask.sum())
    return sums


def main() -> None:
    try:
        run()
    except InputError as exc:  # a missing clip, an unknown model: one line
        raise SystemExit(f"flicker_regions: {exc}") from None


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clip", type=Path, nargs="?", default=SHARED_CLIPS / "car-detection.mp4")
    parser.add_argument("--models", nargs="+", default=["starry_night-small"])
    parser.add_argument("--frames", type=int, default=60, help="frames from the start of the clip")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    frames = first_frames(args.clip, args.frames)
    stylizers = [Stylizer.create(model, "torch", "cpu") for model in args.models]  # bad names fail first
    results = [error_sums(frames, stylizer.one) for stylizer in stylizers]
    floor = results[0]  # the input's errors and the pixel counts are the same in every result
    height, width = frames[0].shape[:2]
    print(f"{cpu_name()}; {args.clip.name}, {len(frames)} frames at {width}x{height}")
    print("| | warping error | " + " | ".join(REGIONS) + " |")
    print("|---|---|" + "---|" * len(REGIONS))
    print(
        "| share of the pixels | | "
        + " | ".join(f"{floor[r].pixels / floor['all'].pixels:.1%}" for r in REGIONS)
        + " |"
    )
    print(f"| the input itself | {floor['all'].input / floor['all'].pixels:.3g} |" + " |" * len(REGIONS))
    for model, sums in zip(args.models, results, strict=True):
        cells = [
            f"{sums[r].stylized / sums['all'].stylized:.0%} (x{sums[r].stylized / sums[r].input:.0f})"
            if sums[r].input
            else "-"
            for r in REGIONS
        ]
        print(f"| {model} | {sums['all'].stylized / sums['all'].pixels:.3g} | " + " | ".join(cells) + " |")
    print("cells: the region's share of the model's error (its mean error there over the input's own there)")


if __name__ == "__main__":
    main()
