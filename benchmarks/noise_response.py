"""Which frame-to-frame change does a stylizer amplify? On a still clip (by default the car
clip: a road filmed from above, where only noise and the codec change between frames), each
model stylizes consecutive frames, and the gain (output change over input change, both as MSE
on RGB in [0, 1]) is printed for the clip's real change and for synthetic noises of the same
power added to a frame:

  white       independent per pixel and channel (the temporal loss's `--temporal-noise white`)
  brightness  one noise for all three channels
  colour      the three channels' noise minus their mean
  blur S      white noise blurred by a Gaussian of S px
  video       `training.losses.video_noise` (`--temporal-noise video`)
  codec       `training.losses.codec_noise` (`--temporal-noise codec`)

    python benchmarks/noise_response.py [--clip ../shared/media/video/car-detection.mp4]
        [--models starry_night-small the_scream-small ...] [--frames 12] [--threads N]

It also prints what the clip's change is made of: the share of its power common to the three
channels (brightness), the correlation of neighbouring pixels (white noise: 1/3 and 0) and the
share of its power a Gaussian blur of 3 and 8 px keeps (its coarse part). A noise the real
change's gain is near is a good stand-in for it in the temporal loss.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from clips import SHARED_CLIPS, first_frames  # beside this script

from stylecast.core.errors import InputError
from stylecast.core.machine import cpu_name
from stylecast.realtime.stylizer import Stylizer
from stylecast.training.losses import codec_noise, video_noise


def blurred(sigma: float) -> Callable[[tuple[int, ...], np.random.Generator], np.ndarray]:
    def noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma)

    return noise


def colour(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(shape)
    return noise - noise.mean(axis=2, keepdims=True)


def from_torch(
    noise_model: Callable[[torch.Tensor], torch.Tensor],
) -> Callable[[tuple[int, ...], np.random.Generator], np.ndarray]:
    def noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        torch.manual_seed(int(rng.integers(2**31)))
        return noise_model(torch.zeros(1, shape[2], *shape[:2]))[0].permute(1, 2, 0).numpy()

    return noise


# name -> noise of a given H x W x 3 shape, any power (it is scaled to the clip's)
NOISES: dict[str, Callable[[tuple[int, ...], np.random.Generator], np.ndarray]] = {
    "white": lambda shape, rng: rng.standard_normal(shape),
    "brightness": lambda shape, rng: np.repeat(rng.standard_normal((*shape[:2], 1)), 3, axis=2),
    "colour": colour,
    "blur 0.7": blurred(0.7),
    "blur 1.5": blurred(1.5),
    "blur 3": blurred(3.0),
    "blur 12": blurred(12.0),
    "video": from_torch(video_noise),
    "codec": from_torch(codec_noise),
}


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a.astype(np.float32) - b.astype(np.float32)) ** 2).mean()) / 255**2


def describe(changes: np.ndarray) -> str:
    """K x H x W x 3 frame differences -> their brightness share, neighbour correlation (white
    noise: 1/3 and 0) and the share of their power a 3 px and an 8 px blur keep."""
    power = float((changes**2).mean())
    brightness = float((changes.mean(axis=3) ** 2).mean()) / power
    neighbours = float((changes[:, :, 1:] * changes[:, :, :-1]).mean()) / power
    kept = [
        np.mean([(cv2.GaussianBlur(change, (0, 0), sigma) ** 2).mean() for change in changes]) / power
        for sigma in (3, 8)
    ]
    return (
        f"{brightness:.0%} brightness, neighbouring pixels' correlation {neighbours:.2f},"
        f" {kept[0]:.0%} of its power kept through a 3 px blur, {kept[1]:.0%} through 8 px"
    )


def gains(stylizer: Stylizer, frames: list[np.ndarray], power: float) -> dict[str, float]:
    """Mean output-change / input-change over consecutive pairs: the real change, then each noise."""
    outputs = [stylizer.one(frame) for frame in frames]
    pairs = list(zip(frames, frames[1:], outputs, outputs[1:], strict=False))
    changed_pairs = [(a, b, oa, ob) for a, b, oa, ob in pairs if mse(a, b) > 0]  # skip repeated frames
    result = {"the clip's own change": float(np.mean([mse(oa, ob) / mse(a, b) for a, b, oa, ob in changed_pairs]))}
    for name, make in NOISES.items():
        rng = np.random.default_rng(0)  # the same noise for every model
        ratios = []
        for frame, out in zip(frames[:-1], outputs[:-1], strict=True):
            noise = make(frame.shape, rng)
            noise *= np.sqrt(power / float((noise**2).mean()))
            changed = np.clip(frame + noise, 0, 255).round().astype(np.uint8)
            ratios.append(mse(stylizer.one(changed), out) / mse(changed, frame))
        result[name] = float(np.mean(ratios))
    return result


def main() -> None:
    try:
        run()
    except InputError as exc:  # a missing clip, an unknown model: one line
        raise SystemExit(f"noise_response: {exc}") from None


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["starry_night-small", "the_scream-small"])
    parser.add_argument("--clip", type=Path, default=SHARED_CLIPS / "car-detection.mp4")
    parser.add_argument("--frames", type=int, default=12, help="frames from the start of the clip")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    frames = first_frames(args.clip, args.frames)
    # the power of the clip's own change (grey levels^2): every noise is scaled to it
    power = float(np.mean([mse(a, b) for a, b in itertools.pairwise(frames)])) * 255**2
    if power == 0:
        raise InputError(f"{args.clip}: its first {len(frames)} frames are identical; nothing changes")
    height, width = frames[0].shape[:2]
    print(f"{cpu_name()}; {args.clip.name}, {len(frames)} frames at {width}x{height}")
    changes = np.stack([b.astype(np.float32) - a for a, b in itertools.pairwise(frames)])
    print(f"the clip's change: {describe(changes)}")
    print(f"gain: output change / input change (MSE); every change {power**0.5:.2f} grey levels RMS")
    kinds = ["the clip's own change", *NOISES]
    print(f"| model | {' | '.join(kinds)} |")
    print(f"|---|{'---|' * len(kinds)}")
    for model in args.models:
        result = gains(Stylizer.create(model, "torch", "cpu"), frames, power)
        print(f"| {model} | {' | '.join(f'{result[k]:.1f}' for k in kinds)} |", flush=True)


if __name__ == "__main__":
    main()
