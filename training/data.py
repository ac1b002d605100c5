"""Image-folder datasets for training the feed-forward networks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from realtime.errors import InputError
from realtime.images import IMAGE_SUFFIXES, read_rgb


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"training data folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    return files


def resize_short_side(rgb: np.ndarray, short_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = short_side / min(h, w)
    size = (max(short_side, round(w * scale)), max(short_side, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(rgb, size, interpolation=interpolation)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 H x W x 3 -> float 3 x H x W in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)


class RandomCrops(Dataset):
    """Photos with their short side scaled to `scale_size`, then a random `crop_size` square
    crop and a random horizontal flip; each item is 3 x crop x crop in [0, 1].

    Scaling to the resolution the model will run at (e.g. 320 for 360p video) keeps the size of
    brush strokes relative to objects the same in training and in use; the crop only bounds the
    cost of a step. With `cache=True` the scaled photos are decoded once and kept in memory
    (the 799 shared training photos at 320 px take ~370 MB), which matters on a 2-core machine. Randomness
    comes from torch's generator, which the DataLoader seeds per worker and the trainer seeds
    once, so runs are reproducible.
    """

    def __init__(self, folder: str | Path, scale_size: int = 320, crop_size: int = 192, cache: bool = True):
        if crop_size > scale_size:
            raise ValueError(f"crop size {crop_size} is larger than the scaled photos ({scale_size})")
        self.files = list_images(folder)
        self.scale_size = scale_size
        self.size = crop_size
        self._cache: dict[int, np.ndarray] = {}
        self.cache = cache

    def __len__(self) -> int:
        return len(self.files)

    def _scaled(self, index: int) -> np.ndarray:
        if index in self._cache:
            return self._cache[index]
        rgb = resize_short_side(read_rgb(self.files[index]), self.scale_size)
        if self.cache:
            self._cache[index] = rgb
        return rgb

    def __getitem__(self, index: int) -> torch.Tensor:
        rgb = self._scaled(index)
        h, w = rgb.shape[:2]
        top = int(torch.randint(0, h - self.size + 1, ()))
        left = int(torch.randint(0, w - self.size + 1, ()))
        crop = rgb[top : top + self.size, left : left + self.size]
        if torch.rand(()) < 0.5:
            crop = crop[:, ::-1]
        return to_tensor(crop)
