"""Image-folder datasets for training the feed-forward networks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from stylecast.core.errors import InputError
from stylecast.core.images import IMAGE_SUFFIXES, MIN_SIDE, read_rgb


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"training data folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    for path in files:
        check_image_header(path)
    return files


def check_image_header(path: Path) -> None:
    """Refuse a photo whose header is unreadable or too small now, not when a batch first draws
    it hours into a run (PIL reads only the header: the 799 shared photos in about 2 s on 2 busy cores)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for a damaged file
        raise InputError(f"training photo {path} is not a readable image ({type(exc).__name__})") from None
    if min(width, height) < MIN_SIDE:
        raise InputError(f"training photo {path} is {width}x{height}; photos must be at least {MIN_SIDE} px a side")


def _rescale(rgb: np.ndarray, scale: float, min_side: int) -> np.ndarray:
    """Both sides times `scale` (at least `min_side`); area averaging down, bicubic up."""
    h, w = rgb.shape[:2]
    size = (max(min_side, round(w * scale)), max(min_side, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def resize_short_side(rgb: np.ndarray, short_side: int) -> np.ndarray:
    return _rescale(rgb, short_side / min(rgb.shape[:2]), min_side=short_side)


def resize_long_side(rgb: np.ndarray, long_side: int) -> np.ndarray:
    return _rescale(rgb, long_side / max(rgb.shape[:2]), min_side=1)


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
        top, left, flip = crop_box(rgb.shape[0], rgb.shape[1], self.size)
        crop = rgb[top : top + self.size, left : left + self.size]
        return to_tensor(crop[:, ::-1] if flip else crop)


def crop_box(h: int, w: int, size: int) -> tuple[int, int, bool]:
    """A random crop position (top, left) and whether to flip, from torch's generator."""
    top = int(torch.randint(0, h - size + 1, ()))
    left = int(torch.randint(0, w - size + 1, ()))
    return top, left, bool(torch.rand(()) < 0.5)


class PairedCrops(Dataset):
    """Aligned pairs, with the same crop and flip applied to both images; each item is
    (a, b), 3 x crop x crop in [0, 1]. Pairs come from two folders with the same file names,
    or from one folder of side-by-side images (A on the left, B on the right)."""

    def __init__(
        self, folder_a: str | Path, folder_b: str | Path | None = None, scale_size: int = 286, crop_size: int = 256
    ):
        self.side_by_side = folder_b is None
        self.files_a = list_images(folder_a)
        if folder_b is not None:
            names_b = {p.name: p for p in list_images(folder_b)}
            missing = [p.name for p in self.files_a if p.name not in names_b]
            if missing:
                raise InputError(
                    f"{len(missing)} image(s) of {folder_a} have no partner in {folder_b}, e.g. {missing[0]}"
                )
            self.files_b = [names_b[p.name] for p in self.files_a]
        self.scale_size, self.size = scale_size, crop_size

    def __len__(self) -> int:
        return len(self.files_a)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.side_by_side:
            ab = read_rgb(self.files_a[index])
            half = ab.shape[1] // 2
            a, b = ab[:, :half], ab[:, half : 2 * half]
        else:
            a, b = read_rgb(self.files_a[index]), read_rgb(self.files_b[index])
        a = resize_short_side(a, self.scale_size)
        b = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)
        top, left, flip = crop_box(a.shape[0], a.shape[1], self.size)
        pair = []
        for image in (a, b):
            crop = image[top : top + self.size, left : left + self.size]
            pair.append(to_tensor(crop[:, ::-1] if flip else crop))
        return pair[0], pair[1]


MIN_STYLE_SIDE = 16  # VGG pools it twice before relu3: 4 px left for the Gram matrices


def style_image_tensor(path: str | Path, long_side: int) -> torch.Tensor:
    rgb = read_rgb(path)
    h, w = rgb.shape[:2]
    short = round(min(h, w) * long_side / max(h, w))
    if short < MIN_STYLE_SIDE:
        raise InputError(
            f"{path} is {w}x{h}: scaled to --style-size {long_side} its short side is {short} px, under"
            f" {MIN_STYLE_SIDE}; give a larger --style-size or a less elongated picture"
        )
    return to_tensor(resize_short_side(rgb, short)).unsqueeze(0)  # 1 x 3 x H x W
