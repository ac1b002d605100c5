"""VGG16 and VGG19 feature taps for perceptual losses, metrics and the arbitrary-style encoder.

`VGGFeatures` is a pure module: RGB in [0, 1] -> {tap name: feature map}. It converts its input
to whatever the weights were trained on (torchvision: RGB, ImageNet mean/std; the original
Caffe weights: BGR, 0..255, mean subtracted), so every caller feeds it the same thing.

Two architectures, each tapped by the names of Simonyan & Zisserman's layers (relu1_1 ..
relu5_3 for VGG16, .. relu5_4 for VGG19): Johnson et al. train on VGG16, Gatys et al. and
AdaIN on VGG19. Weights come from one of two places, resolved by `load_vgg`:
- a local file (a flag, or the environment variable of its architecture, `ENV_WEIGHTS`) with
  the torchvision `vgg16|vgg19().features` key layout and a JSON card beside it that declares
  the preprocessing and which layers exist (a file may hold only the first layers);
- torchvision's ImageNet download, when it can be had.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from stylecast.core.errors import InputError

# conv channel widths of each architecture ("M" = 2x2 max pool), as torchvision builds them
CONFIGS: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512],
}  # fmt: skip
ARCHITECTURES = tuple(CONFIGS)


def _relu_indices(config: list[int | str]) -> dict[str, int]:
    """{"relu1_1": 1, ...}: the index of each ReLU in torchvision's `features` Sequential."""
    names: dict[str, int] = {}
    index, block, conv = 0, 1, 0
    for width in config:
        if width == "M":
            index, block, conv = index + 1, block + 1, 0
        else:
            conv += 1
            names[f"relu{block}_{conv}"] = index + 1  # conv at index, its ReLU right after
            index += 2
    return names


LAYERS = {arch: _relu_indices(config) for arch, config in CONFIGS.items()}
LAYER_INDEX = LAYERS["vgg19"]  # the default architecture's
LAYER_CHANNELS = {name: 64 * 2 ** min(int(name[4]) - 1, 3) for name in LAYER_INDEX}
# a weights file per architecture; STYLECAST_VGG_WEIGHTS, the older name, still means VGG19
ENV_WEIGHTS = {"vgg16": "STYLECAST_VGG16_WEIGHTS", "vgg19": "STYLECAST_VGG19_WEIGHTS"}
LEGACY_ENV_WEIGHTS = "STYLECAST_VGG_WEIGHTS"


class VGGUnavailable(InputError):
    """No usable VGG weights: the message says what was tried and what to do."""


@dataclass(frozen=True)
class Preprocessing:
    """How the weights expect their input: channel order, scale, then (x - mean) / std."""

    channel_order: str  # "RGB" or "BGR"
    scale: float  # multiplies the [0, 1] input first
    mean: tuple[float, float, float]  # in the weights' own channel order
    std: tuple[float, float, float]


TORCHVISION = Preprocessing("RGB", 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _features(arch: str, last_index: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for width in CONFIGS[arch]:
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

    def __init__(self, taps: list[str], preprocessing: Preprocessing = TORCHVISION, arch: str = "vgg19"):
        super().__init__()
        index = LAYERS[arch]
        unknown = [t for t in taps if t not in index]
        if unknown:
            raise ValueError(f"unknown VGG layer(s) {unknown} for {arch}; choose from {list(index)}")
        self.arch = arch
        self.taps = sorted(set(taps), key=index.__getitem__)
        self._tap_at = {index[t]: t for t in self.taps}
        self.features = _features(arch, max(self._tap_at))
        self.flip_channels = preprocessing.channel_order == "BGR"
        self.scale = preprocessing.scale
        self.register_buffer("mean", torch.tensor(preprocessing.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(preprocessing.std).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        x = rgb.flip(1) if self.flip_channels else rgb
        return tapped(self.features, (x * self.scale - self.mean) / self.std, self._tap_at)


def tapped(features: nn.Sequential, x: torch.Tensor, taps: dict[int, str]) -> dict[str, torch.Tensor]:
    """Run `features` on x and keep the outputs of the layers `taps` names by index."""
    out = {}
    for index, layer in enumerate(features):
        x = layer(x)
        if index in taps:
            out[taps[index]] = x
    return out


@dataclass(frozen=True)
class VGGWeights:
    """A resolved set of VGG weights: tensors, their preprocessing and the deepest layer."""

    arch: str  # "vgg16" | "vgg19"
    state_dict: dict[str, torch.Tensor]  # keys "features.{i}.weight|bias" or "{i}.weight|bias", fp32
    preprocessing: Preprocessing
    available: tuple[str, ...]  # tap names the weights can produce, shallowest first
    source: str

    def build(self, taps: list[str]) -> VGGFeatures:
        missing = [t for t in taps if t not in self.available]
        if missing:
            raise ValueError(
                f"{self.arch} weights from {self.source} stop at {self.available[-1]}; cannot tap {missing}"
            )
        module = VGGFeatures(taps, self.preprocessing, self.arch)
        wanted = module.features.state_dict().keys()
        module.features.load_state_dict({k: v for k, v in self._plain_keys().items() if k in wanted})
        return module.eval()

    def describe(self) -> str:
        """For a run log: which network, from where."""
        return f"{self.arch} from {self.source}"

    def _plain_keys(self) -> dict[str, torch.Tensor]:
        return {k.removeprefix("features."): v for k, v in self.state_dict.items()}


def read_card(path: Path) -> dict:
    """The JSON card beside a weights file (same stem): what the weights expect and hold."""
    card = path.with_suffix(".json")
    if not card.is_file():
        raise VGGUnavailable(f"weights {path} need their JSON card beside them: {card}")
    try:
        meta = json.loads(card.read_text())
    except ValueError as exc:
        raise VGGUnavailable(f"{card} is not JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise VGGUnavailable(f"{card} is not a weights card (a JSON object)")
    return meta


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """A state dict file as fp32 tensors (the shared VGG19 is stored in fp16)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise VGGUnavailable(f"{path} is not a readable weights file ({type(exc).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise VGGUnavailable(f"{path} is not a state dict of tensors")
    return {k: v.float() for k, v in state.items()}


def weights_from_file(path: str | Path, arch: str | None = None) -> VGGWeights:
    """Read a VGG `features` state dict and its JSON card. The card's layer indices say which
    architecture it is; `arch` (when given) must agree."""
    path = Path(path)
    if not path.is_file():
        raise VGGUnavailable(f"VGG weights not found: {path}")
    meta = read_card(path)
    try:
        spec = meta["input"]
        order = spec["channel_order"].upper()
        scale = 255.0 if str(spec["range"]).replace(" ", "").startswith("0..255") else 1.0
        mean = tuple(float(m) for m in spec.get("mean_subtract") or (0.0, 0.0, 0.0))
        std = tuple(float(s) for s in spec.get("std_divide") or (1.0, 1.0, 1.0))
        layers = {str(name): int(index) for name, index in meta.get("layers", {}).items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise VGGUnavailable(f"{path.with_suffix('.json')} is not a VGG card ({type(exc).__name__}: {exc})") from None
    if order not in ("RGB", "BGR") or len(mean) != 3 or len(std) != 3:
        raise VGGUnavailable(f"{path.with_suffix('.json')}: channel order or mean/std is not RGB/BGR with 3 values")
    # every architecture whose ReLU indices agree with the card's (a card to relu3_3 fits both)
    fits = [a for a in ARCHITECTURES if layers and all(LAYERS[a].get(n) == i for n, i in layers.items())]
    if not fits:
        raise VGGUnavailable(f"{path.with_suffix('.json')}: its layers {layers} are neither VGG16's nor VGG19's")
    if arch is not None and arch not in fits:
        raise VGGUnavailable(f"{path} holds a {fits[0]}, not the {arch} asked for")
    chosen = arch or fits[-1]
    available = tuple(sorted(layers, key=LAYERS[chosen].__getitem__))
    state = read_state(path)
    return VGGWeights(chosen, state, Preprocessing(order, scale, mean, std), available, str(path))  # type: ignore[arg-type]


def weights_from_torchvision(arch: str = "vgg19") -> VGGWeights:
    """torchvision's ImageNet VGG16 or VGG19 (a download of ~530 MB on first use; needs internet)."""
    from torchvision import models

    builder, weights = {
        "vgg16": (models.vgg16, models.VGG16_Weights.IMAGENET1K_V1),
        "vgg19": (models.vgg19, models.VGG19_Weights.IMAGENET1K_V1),
    }[arch]
    with contextlib.redirect_stdout(sys.stderr):  # torch.hub announces downloads on stdout, which carries --json
        net = builder(weights=weights)
    return VGGWeights(arch, net.features.state_dict(), TORCHVISION, tuple(LAYERS[arch]), f"torchvision {weights}")


def weights_path(arch: str) -> str | None:
    """The file the environment names for `arch`, if any."""
    named = os.environ.get(ENV_WEIGHTS[arch])
    if named or arch != "vgg19":
        return named
    return os.environ.get(LEGACY_ENV_WEIGHTS)


def load_vgg(path: str | Path | None = None, arch: str = "vgg19") -> VGGWeights:
    """Weights of `arch` from `path`, else its environment variable, else torchvision's download.

    Raises VGGUnavailable with what to do when none of them can be had.
    """
    if arch not in CONFIGS:
        raise VGGUnavailable(f"unknown loss network {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    path = path or weights_path(arch)
    if path:
        return weights_from_file(path, arch)
    try:
        return weights_from_torchvision(arch)
    except Exception as exc:  # noqa: BLE001 - any download or import failure means "not available"
        raise VGGUnavailable(
            f"no {arch} weights: torchvision's download failed ({type(exc).__name__}: {exc}); "
            f"pass a weights file or set {ENV_WEIGHTS[arch]}"
        ) from None


def gatys_loss_network(
    path: str | Path | None,
    style_layers: tuple[str, ...],
    content_layer: str,
    device: torch.device,
    required: tuple[str, ...] = (),
) -> VGGFeatures:
    """The VGG19 taps for Gatys-style losses: the style layers the weights have (the log says
    which are missing), the content layer and the `required` ones, on `device`."""
    weights = load_vgg(path)
    layers = [name for name in style_layers if name in weights.available]
    missing = [name for name in style_layers if name not in weights.available]
    if not layers or any(name not in weights.available for name in (content_layer, *required)):
        needed = ", ".join(sorted({content_layer, *required} - set(weights.available)))
        raise VGGUnavailable(
            f"the VGG weights from {weights.source} stop at {weights.available[-1]}; {needed} needed (the full VGG19)"
        )
    logging.getLogger("stylecast.vgg").info(
        "loss network %s; style layers %s%s", weights.describe(), layers, f" (missing: {missing})" if missing else ""
    )
    return weights.build(sorted({*layers, content_layer, *required}, key=weights.available.index)).to(device)
