"""Reading and writing still images as uint8 RGB H x W x 3 arrays.

Whatever is on disk (grayscale, alpha, palette, 16-bit, EXIF-rotated JPEG) comes out as 8-bit
RGB; whatever cannot be decoded raises InputError with a one-line reason.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import cv2
import numpy as np

from stylecast.core.atomic import atomic_output
from stylecast.core.errors import InputError

MIN_SIDE = 8  # below this the 9x9 reflection-padded convolutions cannot run
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
_EXIF_ORIENTATION = 0x0112
# decoded at 3 bytes a pixel and stylized in float32, a 20000 x 20000 PNG of 1 MB asks for
# gigabytes: pictures above this many pixels are refused before they are decoded
ENV_MAX_PIXELS = "STYLECAST_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 50_000_000


def max_pixels() -> int:
    """The pixel cap: $STYLECAST_MAX_PIXELS, else DEFAULT_MAX_PIXELS."""
    value = os.environ.get(ENV_MAX_PIXELS)
    if value is None:
        return DEFAULT_MAX_PIXELS
    try:
        cap = int(value)
    except ValueError:
        raise InputError(f"{ENV_MAX_PIXELS} must be a whole number of pixels, got {value!r}") from None
    if cap < MIN_SIDE * MIN_SIDE:
        raise InputError(f"{ENV_MAX_PIXELS} must be at least {MIN_SIDE * MIN_SIDE}, got {cap}")
    return cap


def _check_pixel_count(path: Path) -> None:
    """Read the size from the file's header (PIL opens lazily) and refuse one over the cap."""
    from PIL import Image

    cap = max_pixels()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
    except Image.DecompressionBombError:  # PIL's own guard, at twice its MAX_IMAGE_PIXELS
        size = f"over {2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels"
        pixels = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    except Exception:  # noqa: BLE001 - a format PIL cannot read: OpenCV's decoder decides
        return
    else:
        size, pixels = f"{w}x{h} = {w * h:,} pixels", w * h
    if pixels > cap:
        raise InputError(f"{path} is {size}, over the limit of {cap:,}; scale it down or raise {ENV_MAX_PIXELS}")


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file to uint8 RGB, H x W x 3."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"image not found: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an image")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if data.size == 0:
        raise InputError(f"{path} is empty (0 bytes)")
    _check_pixel_count(path)
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        if "MAX_IMAGE_PIXELS" in str(exc):  # OpenCV's guard against decompression bombs
            raise InputError(
                f"{path} has more pixels than OpenCV decodes (2^30; the CV_IO_MAX_IMAGE_PIXELS variable raises it)"
            ) from None
        raise InputError(f"{path} is not a readable image") from None
    if image is None or image.size == 0:
        raise InputError(f"{path} is not a readable image")
    rgb = _to_rgb8(image)
    rgb = _apply_exif_orientation(rgb, path)
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise InputError(f"{path} is {w}x{h}; images must be at least {MIN_SIDE}x{MIN_SIDE} pixels")
    return rgb


def _to_rgb8(image: np.ndarray) -> np.ndarray:
    """OpenCV's BGR(A)/gray of any depth -> uint8 RGB; alpha is composited over white."""
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) * (255.0 / 65535.0)).round()
    elif image.dtype in (np.float32, np.float64):
        image = np.clip(image, 0.0, 1.0) * 255.0
    image = image.astype(np.float32) if image.dtype != np.uint8 else image
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2]
    if channels == 4 or channels == 2:  # colour or gray + alpha
        alpha = image[:, :, -1:].astype(np.float32) / 255.0
        colour = image[:, :, :-1].astype(np.float32)
        image = colour * alpha + 255.0 * (1.0 - alpha)
    image = np.clip(image, 0, 255).astype(np.uint8) if image.dtype != np.uint8 else image
    if image.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(image, 3, axis=2))
    return np.ascontiguousarray(image[:, :, ::-1])


def _apply_exif_orientation(rgb: np.ndarray, path: Path) -> np.ndarray:
    """Rotate/flip as the EXIF orientation tag says (phones store portrait photos sideways)."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - no EXIF, or a format PIL cannot open: leave as decoded
        return rgb
    transforms = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.rot90(a, 1)[::-1],
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, -1)[::-1],
        8: lambda a: np.rot90(a, 1),
    }
    if orientation not in transforms:
        return rgb
    return np.ascontiguousarray(transforms[orientation](rgb))


def check_image_output(path: Path) -> None:
    """Refuse an output whose suffix names no image type we write, before any work is done."""
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputError(f"cannot write {path}: unknown image type {suffix!r}; use one of {sorted(IMAGE_SUFFIXES)}")


def write_rgb(path: str | Path, rgb: np.ndarray, quality: int = 95) -> None:
    """Encode by the file's suffix and write atomically (temporary file, then rename)."""
    path = Path(path)
    check_image_output(path)
    suffix = path.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if suffix in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(suffix, np.ascontiguousarray(rgb[:, :, ::-1]), params)
    if not ok:
        raise InputError(f"cannot encode {path} as {suffix}")
    with atomic_output(path) as tmp:
        tmp.write_bytes(encoded.tobytes())
