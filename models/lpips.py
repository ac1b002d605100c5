"""LPIPS v0.1 (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric"): a distance between two images that people's judgements agree with.

Each image goes through a backbone (VGG16 or AlexNet); every tap is unit-normalized along its
channels, the squared difference of the two is weighted per channel by a learned 1x1 head,
averaged over space, and the taps are summed. 0 for identical images; unrelated photos score
about 0.6-0.8.

Weights (`load_lpips`): a folder laid out like the shared one (`lpips.json` card, heads
`lpips_v0.1_{vgg16,alex}_lin.pth`, backbones `vgg16_imagenet_torchvision.pth` and
`alexnet_imagenet_torchvision.pth`), given directly or by $STYLECAST_LPIPS_WEIGHTS; else the heads
shipped inside the `lpips` package and torchvision's ImageNet backbones (a download).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from pathlib import Path

import torch
from torch import nn

from stylecast.models.vgg import Preprocessing, VGGUnavailable, VGGWeights, load_vgg, read_state, tapped

NETS = ("vgg", "alex")
ENV_WEIGHTS = "STYLECAST_LPIPS_WEIGHTS"
# LPIPS' own input scaling: RGB in [-1, 1], then (x - shift) / scale
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
# the same on [0, 1] input, as VGGFeatures applies it: (2x - (1 + shift)) / scale
VGG_PREPROCESSING = Preprocessing("RGB", 2.0, tuple(1 + s for s in SHIFT), SCALE)  # type: ignore[arg-type]
VGG_TAPS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
FILES = {"vgg": ("lpips_v0.1_vgg16_lin.pth", "vgg16_imagenet_torchvision.pth"), "alex": ("lpips_v0.1_alex_lin.pth", "alexnet_imagenet_torchvision.pth")}  # fmt: skip


class LPIPSUnavailable(Exception):
    """No usable LPIPS weights: the message says what was tried and what to do."""


class AlexNetFeatures(nn.Module):
    """torchvision's AlexNet `features`, tapped after each of its five ReLUs; RGB in [0, 1]."""

    TAPS = {1: "relu1", 4: "relu2", 7: "relu3", 9: "relu4", 11: "relu5"}
    shift: torch.Tensor  # 1 x 3 x 1 x 1
    scale: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        return tapped(self.features, (rgb * 2 - 1 - self.shift) / self.scale, self.TAPS)


class LPIPS(nn.Module):
    """Two N x 3 x H x W RGB batches in [0, 1] -> N distances. A pure module: weights come in."""

    def __init__(self, backbone: nn.Module, heads: dict[str, torch.Tensor]):
        super().__init__()
        self.backbone = backbone.eval()
        # heads["lin{i}.model.1.weight"]: 1 x C_i x 1 x 1, one per tap in the backbone's order
        self.heads = nn.ParameterList(nn.Parameter(heads[f"lin{i}.model.1.weight"]) for i in range(len(heads)))
        self.requires_grad_(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        taps_a, taps_b = self.backbone(a), self.backbone(b)
        total = torch.zeros(a.shape[0], device=a.device)
        for head, name in zip(self.heads, taps_a, strict=True):
            fa, fb = _unit(taps_a[name]), _unit(taps_b[name])
            # N x C x h x w -> N x 1 x h x w through the 1x1 head, then the spatial mean
            total = total + nn.functional.conv2d((fa - fb) ** 2, head).mean(dim=(1, 2, 3))
        return total


def _unit(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Each position's channel vector scaled to unit length (LPIPS' normalize_tensor)."""
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def _package_heads(net: str) -> Path:
    spec = importlib.util.find_spec("lpips")
    if spec is None or spec.origin is None:
        raise LPIPSUnavailable(
            f"no LPIPS weights: set {ENV_WEIGHTS} to a folder holding {FILES[net][0]}, or pip install lpips"
        )
    return Path(spec.origin).parent / "weights" / "v0.1" / f"{net}.pth"


def _torchvision_alexnet() -> dict[str, torch.Tensor]:
    from torchvision.models import AlexNet_Weights, alexnet

    with contextlib.redirect_stdout(sys.stderr):  # torch.hub announces downloads on stdout, which carries --json
        return alexnet(weights=AlexNet_Weights.IMAGENET1K_V1).features.state_dict()


def load_lpips(net: str = "vgg", folder: str | Path | None = None) -> LPIPS:
    """LPIPS with the `net` backbone, from `folder`, else $STYLECAST_LPIPS_WEIGHTS, else the
    `lpips` package's heads and torchvision's backbones."""
    if net not in NETS:
        raise LPIPSUnavailable(f"unknown LPIPS network {net!r}; choose from {', '.join(NETS)}")
    folder = folder or os.environ.get(ENV_WEIGHTS)
    head_file, backbone_file = FILES[net]
    try:
        if folder:
            if not (Path(folder) / head_file).is_file():
                raise LPIPSUnavailable(f"LPIPS weights folder {folder} lacks {head_file}")
            heads, backbone_path = read_state(Path(folder) / head_file), Path(folder) / backbone_file
        else:
            heads, backbone_path = read_state(_package_heads(net)), None
        if net == "vgg":
            vgg16 = load_vgg(backbone_path, "vgg16").state_dict
            backbone: nn.Module = VGGWeights("vgg16", vgg16, VGG_PREPROCESSING, VGG_TAPS, "lpips").build(list(VGG_TAPS))
        else:
            backbone = AlexNetFeatures()
            state = read_state(backbone_path) if backbone_path else _torchvision_alexnet()
            backbone.features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()})
    except VGGUnavailable as exc:
        raise LPIPSUnavailable(f"LPIPS-{net}: {exc}") from None
    except (OSError, RuntimeError) as exc:
        raise LPIPSUnavailable(f"LPIPS-{net} weights unusable ({type(exc).__name__}: {exc})") from None
    return LPIPS(backbone, heads)
