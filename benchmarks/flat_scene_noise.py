"""How much does a stylizer amplify sensor noise as a scene gets flatter? For each model, two
copies of the same frame that differ only in Gaussian noise of one grey level (what a still
camera gives from one frame to the next) are stylized, and the mean squared difference of the
two outputs (RGB in [0, 1]) is printed at several contrasts: the frame's deviation from its mean
colour scaled by 1, 0.3, 0.1 and 0.03 (0.03: a plain wall, or the road in the car clip).

    python benchmarks/flat_scene_noise.py [--models starry_night-small the_scream-small ...]
        [--frame ../shared/media/content/chicago.jpg] [--size 640x360] [--draws 3] [--threads N]

The figures grow as the contrast falls: the noise becomes texture that changes every frame (the
likely cause: instance norm divides a flat frame's features by their tiny spread).
Compare models (say, trained with different `--temporal-weight`) in one run; the input's own
figure (2 x the noise variance) is the floor.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from stylecast.cli.common import parse_size
from stylecast.core.errors import InputError
from stylecast.core.images import read_rgb
from stylecast.core.machine import cpu_name
from stylecast.realtime.stylizer import Stylizer

CONTRASTS = (1.0, 0.3, 0.1, 0.03)
NOISE_STD = 1.0  # standard deviation, in grey levels of 255


def flattened(rgb: np.ndarray, contrast: float) -> np.ndarray:
    """H x W x 3 float32: the frame's deviation from its mean colour scaled by `contrast`."""
    frame = rgb.astype(np.float32)
    mean = frame.mean(axis=(0, 1))
    return mean + contrast * (frame - mean)


def noisy(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(frame + rng.normal(0, NOISE_STD, frame.shape), 0, 255).round().astype(np.uint8)


def output_change(stylizer: Stylizer, frame: np.ndarray, draws: int, seed: int) -> float:
    """Mean over `draws` pairs of the squared difference between two noisy copies' outputs."""
    rng = np.random.default_rng(seed)  # the same noise for every model
    changes = []
    for _ in range(draws):
        first, second = (stylizer.one(noisy(frame, rng)).astype(np.float32) / 255 for _ in range(2))
        changes.append(float(((first - second) ** 2).mean()))
    return float(np.mean(changes))


def main() -> None:
    try:
        run()
    except InputError as exc:  # a missing photo, a bad --size, an unknown model: one line
        raise SystemExit(f"flat_scene_noise: {exc}") from None


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["starry_night-small", "the_scream-small"])
    parser.add_argument(
        "--frame", type=Path, default=Path(__file__).resolve().parents[2] / "shared/media/content/chicago.jpg"
    )
    parser.add_argument("--size", default="640x360", help="WxH the photo is resized to")
    parser.add_argument("--draws", type=int, default=3, help="noisy pairs per model and contrast")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = parse_size(args.size)
    rgb = cv2.resize(read_rgb(args.frame), (width, height), interpolation=cv2.INTER_AREA)

    print(f"{cpu_name()}; {args.frame.name} at {width}x{height}; noise {NOISE_STD} grey level")
    print("output change between two noisy copies (MSE, RGB in [0, 1]) at each contrast")
    print(f"| model | {' | '.join(f'contrast {c}' for c in CONTRASTS)} |")
    print(f"|---|{'---|' * len(CONTRASTS)}")
    floor = 2 * (NOISE_STD / 255) ** 2
    print(f"| the input itself | {' | '.join(f'{floor:.2g}' for _ in CONTRASTS)} |")
    for model in args.models:
        stylizer = Stylizer.create(model, "torch", "cpu")
        cells = [output_change(stylizer, flattened(rgb, c), args.draws, seed=i) for i, c in enumerate(CONTRASTS)]
        print(f"| {model} | {' | '.join(f'{v:.2g}' for v in cells)} |", flush=True)


if __name__ == "__main__":
    main()
