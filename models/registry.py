"""Explicit registry of architectures a checkpoint may name (no import-by-name magic)."""

from __future__ import annotations

from torch import nn

from models.johnson import TransformerNet
from models.small import SmallTransformerNet

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "johnson": TransformerNet,
    "johnson_small": SmallTransformerNet,
}
