"""Known colour grades: fixed per-pixel functions used to make a second photo domain whose true
mapping is known, so an unpaired translator (CycleGAN) can be scored against the answer.

    teal_orange: the cinematic split tone; shadows pulled toward teal, highlights toward
                 orange, then an S-shaped contrast curve.

Arrays are uint8 H x W x 3 RGB in and out.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from stylecast.core.images import read_rgb, write_rgb
from stylecast.training.data import list_images

_TEAL = np.array([0.0, 0.45, 0.55], np.float32)
_ORANGE = np.array([1.0, 0.6, 0.25], np.float32)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def teal_orange(rgb: np.ndarray) -> np.ndarray:
    x = rgb.astype(np.float32) / 255.0
    luma = x @ _LUMA  # H x W
    tone = _TEAL + luma[..., None] * (_ORANGE - _TEAL)  # H x W x 3: teal in the shadows, orange in the light
    toned = 0.7 * x + 0.3 * tone
    curved = toned * toned * (3 - 2 * toned)  # smoothstep: darker shadows, brighter highlights
    graded = 0.5 * toned + 0.5 * curved
    return (graded.clip(0, 1) * 255).round().astype(np.uint8)


GRADES: dict[str, Callable[[np.ndarray], np.ndarray]] = {"teal_orange": teal_orange}


def graded_domains(data: Path, grade: str, work: Path) -> tuple[Path, Path]:
    """Two unpaired domains from the photos in `data`, in `work`: A, the even-numbered photos as
    they are (linked); B, the odd-numbered ones through `grade`. No photo is in both. Made once."""
    domain_a, domain_b = work / "photos", work / grade
    if not (domain_b / ".complete").is_file():
        for folder in (domain_a, domain_b):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        for i, path in enumerate(list_images(data)):
            if i % 2 == 0:
                (domain_a / path.name).symlink_to(path.resolve())
            else:
                write_rgb(domain_b / f"{path.stem}.png", GRADES[grade](read_rgb(path)))
        (domain_b / ".complete").touch()
    return domain_a, domain_b
