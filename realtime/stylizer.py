"""A model, a backend and the frame processing around it: frames in, stylized frames out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from models.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from models.zoo import SHIPPED
from realtime.backends import Backend, create_backend
from realtime.errors import InputError
from realtime.processing import FrameProcessor, StyleOptions
from realtime.styles import parse_style_mix


def load_model(spec: str) -> Checkpoint:
    """A shipped model name or a checkpoint path -> Checkpoint (InputError when neither)."""
    if spec in SHIPPED:
        path = SHIPPED[spec].path
        if not path.is_file():
            raise InputError(f"shipped model {spec!r} is missing from this installation ({path})")
    else:
        path = Path(spec)
        if not path.exists():
            raise InputError(f"unknown model {spec!r}: not a shipped model ({', '.join(SHIPPED)}) nor an existing file")
    try:
        return load_checkpoint(path)
    except CheckpointError as exc:
        raise InputError(str(exc)) from None


class Stylizer:
    """Call with a list of same-size uint8 RGB H x W x 3 frames; returns stylized frames.

    A multi-style model also takes a style mix (`style`, changeable at any time with
    `set_style`: a live stream switches styles without reloading anything).
    """

    def __init__(self, ckpt: Checkpoint, backend: Backend, options: StyleOptions, style: str | None = None):
        self.checkpoint = ckpt
        self.backend = backend
        self.options = options
        self.processor = FrameProcessor(ckpt.contract, backend.device, backend.dtype, options)
        # the model's inputs after the image, 1 x ... each (expanded to the batch)
        self.conditions: dict[str, torch.Tensor] = {}
        if ckpt.family == "multistyle":
            self.conditions["style"] = torch.eye(len(ckpt.styles))[:1]  # the first style
        if style is not None:
            self.set_style(style)

    def set_style(self, spec: str) -> None:
        if "style" not in self.conditions:
            raise InputError(
                f"this model has one style ({', '.join(self.checkpoint.styles) or 'unnamed'}); --style is for multi-style models"
            )
        self.conditions["style"] = parse_style_mix(spec, self.checkpoint.styles)[None]

    @classmethod
    def create(
        cls,
        model: str,
        backend: str = "auto",
        device: str = "auto",
        options: StyleOptions | None = None,
        style: str | None = None,
    ) -> Stylizer:
        ckpt = load_model(model)
        try:
            engine = create_backend(backend, ckpt, device)
        except CheckpointError as exc:
            raise InputError(str(exc)) from None
        return cls(ckpt, engine, options or StyleOptions(), style)

    @torch.inference_mode()
    def __call__(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        original = self.processor.upload(frames)
        x, crop = self.processor.to_model(original)
        y = self.backend(x, *(c.expand(len(frames), *c.shape[1:]) for c in self.conditions.values()))
        return self.processor.download(self.processor.from_model(y, crop, original))

    def one(self, frame: np.ndarray) -> np.ndarray:
        return self([frame])[0]
