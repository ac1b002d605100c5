"""VGG19 feature taps for perceptual losses and the arbitrary-style encoder.

`VGGFeatures` is a pure module: RGB in [0, 1] -> {tap name: feature map}. It converts its input
to whatever the weights were trained on (torchvision: RGB, ImageNet mean/std; the original
Caffe weights: BGR, 0..255, mean subtracted), so every caller feeds it the same thing.

Weights come from one of two places, resolved by `load_vgg`:
- a local file (`--vgg-weights`, or the environment variable STYLECAST_VGG_WEIGHTS) with the
  torchvision `vgg19().features` key layout and a JSON beside it that declares the
  preprocessing and which layers exist (a file may hold only the first layers);
- torchvision's ImageNet download, when it can be had.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

# torchvision vgg19().features: index of each ReLU output, named as in Gatys et al.
LAYER_INDEX = {
    "relu1_1": 1, "relu1_2": 3,
    "relu2_1": 6, "relu2_2": 8,
    "relu3_1": 11, "relu3_2": 13, "relu3_3": 15, "relu3_4": 17,
    "relu4_1": 20, "relu4_2": 22, "relu4_3": 24, "relu4_4": 26,
    "relu5_1": 29, "relu5_2": 31, "relu5_3": 33, "relu5_4": 35,
}  # fmt: skip
LAYER_CHANNELS = {name: 64 * 2 ** min(int(name[4]) - 1, 3) for name in LAYER_INDEX}
# conv channel widths of VGG19 ("M" = 2x2 max pool)
_CONFIG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]  # fmt: skip
ENV_WEIGHTS = "STYLECAST_VGG_WEIGHTS"


class VGGUnavailable(Exception):
    """No usable VGG19 weights: the message says what was tried and what to do."""


@dataclass(frozen=True)
class Preprocessing:
    """How the weights expect their input: channel order, scale, then (x - mean) / std."""

    channel_order: str  # "RGB" or "BGR"
    scale: float  # multiplies the [0, 1] input first
    mean: tuple[float, float, float]  # in the weights' own channel order
    std: tuple[float, float, float]


TORCHVISION = Preprocessing("RGB", 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _features(last_index: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for width in _CONFIG:
        if isinstance(width, str):  # "M"
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_ch, width, 3, padding=1), nn.ReLU(inplace=False)]
            in_ch = width
        if len(layers) > last_index:
            break
    return nn.Sequential(*layers[: last_index + 1])


class VGGFeatures(nn.Module):
    """RGB in [0, 1], N x 3 x H x W -> dict of the requested ReLU outputs.

    Only the layers up to the deepest requested tap are built, so a file holding conv1_1..
    relu3_4 serves any tap up to relu3_4.
    """

    mean: torch.Tensor  # 1 x 3 x 1 x 1, buffers registered in __init__
    std: torch.Tensor

    def __init__(self, taps: list[str], preprocessing: Preprocessing = TORCHVISION):
        super().__init__()
        unknown = [t for t in taps if t not in LAYER_INDEX]
        if unknown:
            raise ValueError(f"unknown VGG layer(s) {unknown}; choose from {list(LAYER_INDEX)}")
        self.taps = sorted(set(taps), key=LAYER_INDEX.__getitem__)
        self._tap_at = {LAYER_INDEX[t]: t for t in self.taps}
        self.features = _features(max(self._tap_at))
        self.flip_channels = preprocessing.channel_order == "BGR"
        self.scale = preprocessing.scale
        self.register_buffer("mean", torch.tensor(preprocessing.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(preprocessing.std).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        x = rgb.flip(1) if self.flip_channels else rgb
        x = (x * self.scale - self.mean) / self.std
        out = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self._tap_at:
                out[self._tap_at[index]] = x
        return out


@dataclass(frozen=True)
class VGGWeights:
    """A resolved set of VGG19 weights: tensors, their preprocessing and the deepest layer."""

    state_dict: dict[str, torch.Tensor]  # keys "features.{i}.weight|bias" or "{i}.weight|bias"
    preprocessing: Preprocessing
    available: tuple[str, ...]  # tap names the weights can produce
    source: str

    def build(self, taps: list[str]) -> VGGFeatures:
        missing = [t for t in taps if t not in self.available]
        if missing:
            raise ValueError(f"VGG weights from {self.source} stop at {self.available[-1]}; cannot tap {missing}")
        module = VGGFeatures(taps, self.preprocessing)
        wanted = module.features.state_dict().keys()
        module.features.load_state_dict({k: v for k, v in self._plain_keys().items() if k in wanted})
        return module.eval()

    def _plain_keys(self) -> dict[str, torch.Tensor]:
        return {k.removeprefix("features."): v for k, v in self.state_dict.items()}


def weights_from_file(path: str | Path) -> VGGWeights:
    """Read a VGG19 `features` state dict and the JSON beside it (same stem)."""
    path = Path(path)
    if not path.is_file():
        raise VGGUnavailable(f"VGG weights not found: {path}")
    meta_path = path.with_suffix(".json")
    if not meta_path.is_file():
        raise VGGUnavailable(f"VGG weights {path} need their preprocessing JSON beside them: {meta_path}")
    try:
        meta = json.loads(meta_path.read_text())
        spec = meta["input"]
    except (ValueError, KeyError, TypeError) as exc:
        raise VGGUnavailable(f"{meta_path} is not a VGG preprocessing description ({exc})") from None
    order = spec["channel_order"].upper()
    scale = 255.0 if str(spec["range"]).replace(" ", "").startswith("0..255") else 1.0
    mean = tuple(float(m) for m in spec.get("mean_subtract") or (0.0, 0.0, 0.0))
    std = tuple(float(s) for s in spec.get("std_divide") or (1.0, 1.0, 1.0))
    layers = meta.get("layers", {})
    available = tuple(sorted((n for n in layers if n in LAYER_INDEX), key=LAYER_INDEX.__getitem__))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise VGGUnavailable(f"{path} is not a readable weights file ({type(exc).__name__})") from None
    return VGGWeights(state, Preprocessing(order, scale, mean, std), available, str(path))  # type: ignore[arg-type]


def weights_from_torchvision() -> VGGWeights:
    """torchvision's ImageNet VGG19 (downloads ~550 MB on first use; needs internet)."""
    from torchvision.models import VGG19_Weights, vgg19

    with contextlib.redirect_stdout(sys.stderr):  # torch.hub announces downloads on stdout, which carries --json
        net = vgg19(weights=VGG19_Weights.IMAGENET1K_V1)
    return VGGWeights(
        net.features.state_dict(), TORCHVISION, tuple(LAYER_INDEX), "torchvision VGG19_Weights.IMAGENET1K_V1"
    )


def load_vgg(path: str | Path | None = None) -> VGGWeights:
    """Weights from `path`, else $STYLECAST_VGG_WEIGHTS, else torchvision's download.

    Raises VGGUnavailable with what to do when none of them can be had.
    """
    path = path or os.environ.get(ENV_WEIGHTS)
    if path:
        return weights_from_file(path)
    try:
        return weights_from_torchvision()
    except Exception as exc:  # noqa: BLE001 - any download or import failure means "not available"
        raise VGGUnavailable(
            f"no VGG19 weights: torchvision's download failed ({type(exc).__name__}: {exc}); "
            f"pass --vgg-weights FILE or set {ENV_WEIGHTS}"
        ) from None
