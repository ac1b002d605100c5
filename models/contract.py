"""How to feed a model, and what drives it: the part of a checkpoint that needs no torch.

The checkpoint (models/checkpoint.py) and the metadata of an exported file (export/contract.py)
both carry it; the torch-free ONNX Runtime path (realtime/onnx_frames.py) reads it without
importing torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

PAIRS = ("edges", "grayscale")  # the free pairs a translator's input is made with (models/pairs.py)

CHANNEL_ORDERS = ("RGB", "BGR")
MAX_SIZE_MULTIPLE = 1024  # a U-Net of depth 8 needs 256
MAX_MARGIN = 256


def far_padding(length: int, margin: int, multiple: int) -> int:
    """Pixels the runtime adds after the far (bottom or right) margin so that a side of `length`,
    with `margin` on both ends, becomes a multiple of `multiple`."""
    return -(length + 2 * margin) % multiple


class Family(str, Enum):
    """How the runtime drives a model: what it takes besides the picture."""

    JOHNSON = "johnson"  # one style: the picture alone
    MULTISTYLE = "multistyle"  # several styles: a style-weight vector per picture
    ARBITRARY = "arbitrary"  # any style picture: its feature statistics and a strength
    TRANSLATOR = "translator"  # image to image (pix2pix, CycleGAN): the picture, or a pair made from it

    def __str__(self) -> str:
        return self.value


class CheckpointError(ValueError):
    """A file that is not a usable stylecast checkpoint."""


@dataclass
class InputContract:
    """How to feed a model: value range, channel order, and the multiple H and W must be of."""

    range: tuple[float, float] = (0.0, 1.0)
    channel_order: str = "RGB"
    size_multiple: int = 4
    margin: int = 0  # reflect-pad each side by this much and crop it off again (see models/small.py)
    output_range: tuple[float, float] = (0.0, 1.0)
    transform: str | None = None  # a free-pair input made from the frame first (models/pairs.py)

    def __post_init__(self) -> None:
        """Refuse a contract that would crash the runtime or quietly give a black picture."""
        for name in ("range", "output_range"):
            low, high = (float(v) for v in getattr(self, name))  # exactly two numbers
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ValueError(f"input {name} {getattr(self, name)} is not two finite numbers, low < high")
        if self.channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"channel order {self.channel_order!r} is not one of {', '.join(CHANNEL_ORDERS)}")
        if not 1 <= self.size_multiple <= MAX_SIZE_MULTIPLE:
            raise ValueError(f"size multiple {self.size_multiple} is not between 1 and {MAX_SIZE_MULTIPLE}")
        if not 0 <= self.margin <= MAX_MARGIN:
            raise ValueError(f"margin {self.margin} is not between 0 and {MAX_MARGIN}")
        if self.transform is not None and self.transform not in PAIRS:
            raise ValueError(f"transform {self.transform!r} is not one of {', '.join(PAIRS)}")
