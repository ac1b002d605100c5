"""`stylecast eval translator`: a translator's output against the true target, on held-out photos,
next to the trivial baseline of leaving the input unchanged.

The true target is known in two cases: a free-pair model (its input is computed from the
photo, so the photo itself is the answer; the baseline is that computed input, e.g. the
grayscale picture for a colorizer) and a model trained towards a known colour grade
(training/grades.py; the target is the graded photo, the baseline the photo as it is).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from stylecast.evaluation.metrics import ssim
from stylecast.models.pairs import pair_input
from stylecast.training.data import to_tensor

Image = np.ndarray  # uint8 H x W x 3 RGB


@dataclass
class Scores:
    l1: float  # mean absolute difference to the target, in [0, 1] units
    ssim: float  # mean SSIM to the target over the three channels


def scores(images: list[Image], targets: list[Image]) -> Scores:
    l1, similarity = [], []
    for image, target in zip(images, targets, strict=True):
        a, b = to_tensor(image)[None].double(), to_tensor(target)[None].double()  # 1 x 3 x H x W in [0, 1]
        l1.append(float((a - b).abs().mean()))
        similarity.append(float(ssim(a, b)[0]))
    return Scores(float(np.mean(l1)), float(np.mean(similarity)))


def free_pair_input(kind: str, photo: Image) -> Image:
    """What a free-pair translator is fed for `photo`, as an image (the baseline it must beat)."""
    x = pair_input(kind, to_tensor(photo)[None])  # 1 x 3 x H x W in [0, 1]
    return (x[0].permute(1, 2, 0) * 255).round().byte().numpy()


def evaluate_translator(
    translate: Callable[[Image], Image],
    photos: list[Image],
    target: Callable[[Image], Image],
    baseline: Callable[[Image], Image],
) -> dict[str, dict[str, float]]:
    """{'model': {'l1', 'ssim'}, 'baseline': {...}} of translate(photo) and baseline(photo)
    against target(photo), averaged over the photos."""
    with torch.inference_mode():
        outputs = [translate(photo) for photo in photos]
    targets = [target(photo) for photo in photos]
    return {
        "model": asdict(scores(outputs, targets)),
        "baseline": asdict(scores([baseline(photo) for photo in photos], targets)),
    }
