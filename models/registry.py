"""Explicit registry of architectures a checkpoint may name (no import-by-name magic)."""

from __future__ import annotations

import torch
from torch import nn

from stylecast.models.adain import ArbitraryStyleNet
from stylecast.models.johnson import TransformerNet
from stylecast.models.multistyle import MultiStyleSmallNet, MultiStyleTransformerNet
from stylecast.models.resnet_generator import ResnetGenerator
from stylecast.models.small import SmallTransformerNet
from stylecast.models.unet_generator import UnetGenerator

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "johnson": TransformerNet,
    "johnson_small": SmallTransformerNet,
    "multistyle": MultiStyleTransformerNet,
    "multistyle_small": MultiStyleSmallNet,
    "arbitrary": ArbitraryStyleNet,
    "resnet_generator": ResnetGenerator,
    "unet_generator": UnetGenerator,
}


def example_conditions(
    module: nn.Module, batch: int, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """The inputs after the image that `module` takes (e.g. style weights), keyed by the name
    of its forward argument: a fixed example, or random valid ones from `generator`; empty for
    single-style stylizers."""
    example = getattr(module, "example_conditions", None)
    return example(batch, generator) if example is not None else {}
