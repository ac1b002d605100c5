"""A model, a backend and the frame processing around it: frames in, stylized frames out."""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from stylecast.core.cache import file_digest, model_key_of_file, remember_model_key
from stylecast.core.errors import InputError
from stylecast.export.onnx import model_key
from stylecast.models.adain import ArbitraryStyleNet, interpolate_statistics, picture_statistics
from stylecast.models.checkpoint import Checkpoint, CheckpointError, Family, load_checkpoint
from stylecast.realtime.backends import Backend, create_backend
from stylecast.realtime.exported import is_exported, open_exported
from stylecast.realtime.names import TRANSFORMS
from stylecast.realtime.processing import FrameProcessor, StyleOptions
from stylecast.realtime.styles import parse_style_mix
from stylecast.realtime.torch_free import answers_flat, model_file


def load_model(spec: str) -> Checkpoint:
    """A shipped model name or a checkpoint path -> Checkpoint (InputError when neither). The
    file's model key is recorded for the torch-free path (realtime/torch_free.py)."""
    path = model_file(spec)
    if is_exported(spec):
        raise InputError(
            f"{path.name} is an exported model: image, video, webcam, demo and eval temporal run it;"
            " this command needs the checkpoint (.pt)"
        )
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as exc:
        raise InputError(str(exc)) from None
    with contextlib.suppress(OSError):  # a cache that cannot be written costs only the torch-free path
        digest, key = file_digest(path), model_key(ckpt)
        if model_key_of_file(digest) != key:  # new, or made by a version whose exports differ
            remember_model_key(digest, key)
    return ckpt


FLAT_STD = 0.5 / 255  # a model input this uniform (std over all its values) counts as flat
FLAT_TEXTURE = 0.01  # std of the fixed faint texture a flat frame is answered through, of the input range


@dataclass
class Prepared:
    """Frames made ready for the model, and what turns its output back into frames."""

    processor: FrameProcessor
    original: torch.Tensor  # N x 3 x H x W in [0, 1]
    x: torch.Tensor  # the model input
    crop: tuple[int, int, int, int]  # top, left, height, width of the picture in the output
    conditions: list[torch.Tensor]  # N x ... each: the model's inputs after the image


class Stylizer:
    """Call with a list of same-size uint8 RGB H x W x 3 frames; returns stylized frames.

    A multi-style model also takes a style mix (`style`, changeable at any time with
    `set_style`: a live stream switches styles without reloading anything). An arbitrary-style
    model takes style images with weights and a strength `alpha` (`set_style_images`).
    A caller that batches frames of several clients (the server) uses the steps of a call on
    their own: `prepare` with each client's options and style, one backend call, `finish`.
    """

    def __init__(
        self,
        ckpt: Checkpoint,
        backend: Backend,
        options: StyleOptions,
        style: str | None = None,
        style_images: list[tuple[np.ndarray, float]] | None = None,
        alpha: float = 1.0,
        style_image_names: list[str] | None = None,
    ):
        self.checkpoint = ckpt
        self.backend = backend
        self.options = options
        self.processor = FrameProcessor(ckpt.contract, backend.device, backend.dtype, options)
        self.answers_flat = answers_flat(ckpt.family, ckpt.kwargs)
        # the model's inputs after the image, 1 x ... each (expanded to the batch)
        self.conditions: dict[str, torch.Tensor] = {}
        if ckpt.family is Family.MULTISTYLE:
            self.conditions["style"] = torch.eye(len(ckpt.styles))[:1]  # the first style
        if style is not None:
            self.set_style(style)
        if ckpt.family is Family.ARBITRARY:
            if not style_images:
                raise InputError("this model takes any style image: give --style-image PAINTING.jpg")
            # on the CPU: style statistics are computed once per style
            self.encoder = cast(ArbitraryStyleNet, ckpt.build())  # what the "arbitrary" family builds
            self.set_style_images(style_images, alpha, style_image_names)
        elif style_images:
            raise InputError("--style-image is for arbitrary-style models (stylecast models lists their family)")

    def set_style_images(
        self, images: list[tuple[np.ndarray, float]], alpha: float = 1.0, names: list[str] | None = None
    ) -> None:
        """Style statistics of the weighted style images (interpolated), and the strength; each
        picture's are kept under its name (default: its position) for mixes (`conditions_for`)."""
        if not 0.0 <= alpha <= 1.0:
            raise InputError(f"--alpha must be between 0 and 1, got {alpha}")
        stats = [picture_statistics(self.encoder, image) for image, _ in images]
        self.pictures = dict(zip(names or [str(i) for i in range(len(images))], stats, strict=True))
        self.alpha = alpha
        mean, spread = interpolate_statistics(stats, [weight for _, weight in images])
        self.conditions = {"style_mean": mean, "style_spread": spread, "alpha": torch.tensor([[alpha]])}

    @property
    def style_names(self) -> list[str]:
        """What a style mix can name: a multi-style model's styles, an arbitrary-style model's pictures."""
        if self.checkpoint.family is Family.ARBITRARY:
            return list(self.pictures)
        return list(self.checkpoint.styles) if self.checkpoint.family is Family.MULTISTYLE else []

    def conditions_for(self, style: str | None) -> list[torch.Tensor]:
        """The model's inputs after the image (1 x ... each) for the mix `style` of `style_names`
        (e.g. "starry_night:0.7,great_wave:0.3"); None: the stylizer's own."""
        if style is None:
            return list(self.conditions.values())
        if self.checkpoint.family is Family.MULTISTYLE:
            return [parse_style_mix(style, self.checkpoint.styles)[None]]
        if self.checkpoint.family is Family.ARBITRARY:
            weights = parse_style_mix(style, list(self.pictures)).tolist()
            mean, spread = interpolate_statistics(list(self.pictures.values()), weights)
            return [mean, spread, torch.tensor([[self.alpha]])]
        raise InputError("a style mix is for multi-style and arbitrary-style models")

    def set_style(self, spec: str) -> None:
        if "style" not in self.conditions:
            raise InputError(
                f"this model has one style ({', '.join(self.checkpoint.styles) or 'unnamed'}); --style is for multi-style models"
            )
        self.conditions["style"] = parse_style_mix(spec, self.checkpoint.styles)[None]

    def set_max_size(self, max_size: int | None) -> None:
        """Cap the longest processed side from the next frame on (None: the frame's own size)."""
        self.options = dataclasses.replace(self.options, max_size=max_size)
        self.processor.options = self.options

    @classmethod
    def create(
        cls,
        model: str | Checkpoint,
        backend: str = "auto",
        device: str = "auto",
        options: StyleOptions | None = None,
        style: str | None = None,
        style_images: list[tuple[np.ndarray, float]] | None = None,
        alpha: float = 1.0,
        transform: str | None = None,
    ) -> Stylizer:
        """`model`: a shipped name, a checkpoint path, an exported .onnx or .pt2 file, or a
        checkpoint a caller already loaded."""
        if isinstance(model, str) and is_exported(model):
            if transform is not None:
                raise InputError("--transform applies to arbitrary-style checkpoints, not exported files")
            ckpt, engine = open_exported(model, backend, device)
            return cls(ckpt, engine, options or StyleOptions(), style, style_images, alpha)
        ckpt = model if isinstance(model, Checkpoint) else load_model(model)
        if transform is not None:  # the arbitrary model's feature transform: adain | wct
            if ckpt.family is not Family.ARBITRARY or transform not in TRANSFORMS:
                raise InputError("--transform adain|wct applies to arbitrary-style models")
            ckpt = dataclasses.replace(ckpt, kwargs={**ckpt.kwargs, "transform": transform})
        try:
            engine = create_backend(backend, ckpt, device)
        except CheckpointError as exc:
            raise InputError(str(exc)) from None
        return cls(ckpt, engine, options or StyleOptions(), style, style_images, alpha)

    @torch.inference_mode()
    def __call__(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        prepared = self.prepare(frames)
        return self.finish(prepared, self.backend(prepared.x, *prepared.conditions))

    def prepare(
        self, frames: list[np.ndarray], options: StyleOptions | None = None, style: str | None = None
    ) -> Prepared:
        """Frames as model input, with `options` and the mix `style` (None: the stylizer's own)."""
        processor = (
            self.processor
            if options is None
            else FrameProcessor(self.checkpoint.contract, self.backend.device, self.backend.dtype, options)
        )
        original = processor.upload(frames)
        x, crop = processor.to_model(original)
        conditions = [c.expand(len(frames), *c.shape[1:]) for c in self.conditions_for(style)]
        return Prepared(processor, original, x, crop, conditions)

    def finish(self, prepared: Prepared, y: torch.Tensor) -> list[np.ndarray]:
        """The model's output for `prepared` as frames."""
        if self.answers_flat:
            y = self.answer_flat(prepared.x, y, prepared.conditions)
        return prepared.processor.download(prepared.processor.from_model(y, prepared.crop, prepared.original))

    def answer_flat(self, x: torch.Tensor, y: torch.Tensor, conditions: list[torch.Tensor]) -> torch.Tensor:
        """On an exactly flat frame (a grey card, a blank screen) every feature map is constant,
        each instance norm turns it to zero and the output is the biases' near-black (4-10 grey
        levels). Such frames get, flat, the mean colour the net paints on the same frame under a
        faint fixed texture (N x 3 x H x W in, out; other frames unchanged)."""
        lo, hi = self.checkpoint.contract.range
        flat = x.flatten(1).float().std(dim=1) < FLAT_STD * (hi - lo)
        if not bool(flat.any()):
            return y
        generator = torch.Generator().manual_seed(0)  # the same texture every time: no flicker
        texture = FLAT_TEXTURE * (hi - lo) * torch.randn(x[flat].shape, generator=generator)
        textured = (x[flat] + texture.to(x.device, x.dtype)).clamp(lo, hi)
        painted = self.backend(textured, *(c[flat] for c in conditions))
        y = y.clone()
        y[flat] = painted.mean(dim=(2, 3), keepdim=True).expand_as(painted).to(y.dtype)
        return y

    def one(self, frame: np.ndarray) -> np.ndarray:
        return self([frame])[0]
