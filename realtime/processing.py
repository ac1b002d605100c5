"""Pre- and post-processing on the model's device (contracts 2 and 4 of DESIGN.md).

Preprocess: uint8 RGB frames (host) -> one upload (pinned, non-blocking on CUDA) -> N x 3 x H x W
in the model's dtype and value range, scaled to the processing size and padded by reflection to
the model's size multiple.
Postprocess: crop the padding, back to [0, 1], upsample to the frame size (restoring the
frame's own fine detail), colour preservation and strength blending against the original,
clamp, uint8 on the device, one copy to the host.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from stylecast.models.checkpoint import InputContract
from stylecast.models.color import luminance, rgb_to_ycbcr, ycbcr_to_rgb
from stylecast.models.contract import far_padding
from stylecast.models.pairs import pair_input
from stylecast.realtime.names import UPSAMPLERS


@dataclass
class StyleOptions:
    strength: float = 1.0  # 1: stylized only, 0: the input unchanged
    preserve_color: bool = False  # keep the input's colours, take the stylized luminance
    max_size: int | None = None  # process with the longer side at most this many pixels
    scale: float = 1.0  # process at this fraction of the frame size
    upsample: str = "detail"  # from a reduced processing size: "detail" or plain "bicubic"

    def __post_init__(self) -> None:
        if self.upsample not in UPSAMPLERS:
            raise ValueError(f"upsample must be one of {UPSAMPLERS}, got {self.upsample!r}")

    def processing_size(self, height: int, width: int) -> tuple[int, int]:
        factor = self.scale
        if self.max_size is not None and max(height, width) * factor > self.max_size:
            factor = self.max_size / max(height, width)
        return max(1, round(height * factor)), max(1, round(width * factor))


class HostBuffers:
    """Pinned host tensors reused by (shape, dtype), so each frame costs no allocation; one set
    per calling thread (the file pipeline's workers upload at once)."""

    def __init__(self, pin: bool):
        self.pin = pin
        self._buffers: dict[tuple[int, tuple[int, ...], torch.dtype], torch.Tensor] = {}

    def get(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        key = (threading.get_ident(), shape, dtype)
        if key not in self._buffers:
            self._buffers[key] = torch.empty(shape, dtype=dtype, pin_memory=self.pin)
        return self._buffers[key]


def upsample_with_detail(stylized: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Bicubic upsampling of a stylization made at reduced size, plus the detail the reduction
    removed from the frame: the frame's luminance minus its own down-and-up round trip.

    stylized: N x 3 x h x w, original: N x 3 x H x W, both in [0, 1]. Object edges come back
    sharp while the brush texture stays as the model painted it; a guided filter, the usual
    edge-preserving upsampler, smooths that texture away because it does not follow the frame.
    Luminance and resizing are both linear, so the round trip runs on one channel, not three.
    """
    size = original.shape[2:]
    luma = luminance(original)
    low = F.interpolate(luma, size=stylized.shape[2:], mode="bilinear", antialias=True, align_corners=False)
    lost = luma - F.interpolate(low, size=size, mode="bicubic", align_corners=False)
    return F.interpolate(stylized, size=size, mode="bicubic", align_corners=False) + lost


def preserve_color(stylized: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Luminance of the stylized image with the chroma of the original (Gatys et al. 2016b)."""
    ycc = rgb_to_ycbcr(original)
    ycc = torch.cat([rgb_to_ycbcr(stylized)[:, :1], ycc[:, 1:]], dim=1)
    return ycbcr_to_rgb(ycc)


class FrameProcessor:
    """Converts frames to model inputs and model outputs back to frames, on `device`."""

    def __init__(self, contract: InputContract, device: torch.device, dtype: torch.dtype, options: StyleOptions):
        self.contract = contract
        self.device = device
        self.dtype = dtype
        self.options = options
        self.host = HostBuffers(pin=device.type == "cuda")

    def upload(self, frames: list[np.ndarray]) -> torch.Tensor:
        """N frames of H x W x 3 uint8 -> N x 3 x H x W float32 in [0, 1] on the device.

        On CUDA the frames go through a reused pinned buffer; reusing it is safe because each
        batch ends in `download`, which waits for the device, before the same thread's next upload.
        """
        if self.device.type == "cpu":
            pixels = torch.from_numpy(np.stack(frames))
        else:
            staging = self.host.get((len(frames), *frames[0].shape), torch.uint8)
            for i, frame in enumerate(frames):
                staging[i].copy_(torch.from_numpy(frame))
            pixels = staging.to(self.device, non_blocking=True)
        return pixels.permute(0, 3, 1, 2).float().div_(255.0)

    def to_model(self, rgb: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        """[0, 1] RGB N x 3 x H x W -> model input and the (top, left, h, w) to crop its output to.

        The frame is padded by reflection: by the contract's margin on every side (so a
        network's border effects fall outside the picture), then up to its size multiple."""
        h, w = self.options.processing_size(rgb.shape[2], rgb.shape[3])
        x = pair_input(self.contract.transform, rgb) if self.contract.transform else rgb
        if (h, w) != tuple(rgb.shape[2:]):
            x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        m, b = self.contract.size_multiple, self.contract.margin
        pad_h, pad_w = far_padding(h, b, m), far_padding(w, b, m)
        if b or pad_h or pad_w:
            reflect = min(h, w) > b + max(pad_h, pad_w)  # reflection needs more picture than padding
            x = F.pad(x, (b, b + pad_w, b, b + pad_h), mode="reflect" if reflect else "replicate")
        if self.contract.channel_order == "BGR":
            x = x.flip(1)
        lo, hi = self.contract.range
        if (lo, hi) != (0.0, 1.0):
            x = x * (hi - lo) + lo
        return x.to(self.dtype).contiguous(), (b, b, h, w)

    def from_model(self, y: torch.Tensor, crop: tuple[int, int, int, int], original: torch.Tensor) -> torch.Tensor:
        """Model output -> uint8 N x H x W x 3 on the device, blended with `original` ([0, 1])."""
        top, left, h, w = crop
        y = y[:, :, top : top + h, left : left + w].float()
        if self.contract.channel_order == "BGR":
            y = y.flip(1)
        lo, hi = self.contract.output_range
        if (lo, hi) != (0.0, 1.0):
            y = (y - lo) / (hi - lo)
        if y.shape[2:] != original.shape[2:]:
            reduced = y.shape[2] < original.shape[2]
            if reduced and self.options.upsample == "detail" and not self.contract.transform:
                y = upsample_with_detail(y, original)  # (not for translators: their input is not the picture)
            else:
                y = F.interpolate(y, size=original.shape[2:], mode="bicubic", align_corners=False)
        if self.contract.transform == "grayscale":
            # the network saw the frame's luminance, which is the target's too: only the chroma
            # is its to choose, as colorization networks predict chroma for a given lightness
            y = preserve_color(original, y)
        if self.options.preserve_color:
            y = preserve_color(y, original)
        if self.options.strength != 1.0:
            y = torch.lerp(original, y, self.options.strength)
        return y.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).permute(0, 2, 3, 1)

    def download(self, pixels: torch.Tensor) -> list[np.ndarray]:
        """uint8 N x H x W x 3 on the device -> host arrays (one copy)."""
        host = pixels.cpu() if self.device.type != "cpu" else pixels
        return [np.ascontiguousarray(frame) for frame in host.numpy()]
