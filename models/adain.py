"""Arbitrary style transfer: any style image at run time.

Huang & Belongie 2017 (AdaIN): encode content and style with VGG, give the content features the
style features' channel means and standard deviations, decode:
    AdaIN(x, y) = sigma(y) * (x - mu(x)) / sigma(x) + mu(y)
Li et al. 2017 (WCT): whiten the content features' covariance and colour them with the style's:
    WCT(x, y) = C_y^(1/2) C_x^(-1/2) (x - mu(x)) + mu(y)
The matrix square roots use Newton-Schulz iterations (matrix products only), so WCT exports to
ONNX and TensorRT like everything else.

The encoder is either the VGG19 prefix (when its weights are present) or a compact encoder
distilled to reproduce the VGG taps (Wang et al. 2020, collaborative distillation): it needs no
VGG weights at run time and is several times cheaper. The features are moved at the encoder's
deepest tap, relu4_1 as in the paper (512 channels at 1/8 resolution), or relu3_1 (256 at 1/4:
the first shipped model's, from when the shared VGG weights stopped at relu3_4); the decoder
mirrors the encoder from there, optionally with the content's shallower taps joined back in at
their resolutions (skips: the distilled encoder keeps only about half of VGG's relu4_1).

The exported model takes the image and the style's statistics (computed once per style image):
AdaIN: mean and std (N x C); WCT: mean (N x C) and the colouring matrix C_y^(1/2) (N x C x C).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from stylecast.models.layers import ReflectConv
from stylecast.models.vgg import Preprocessing, VGGFeatures

EPS = 1e-5
STYLE_IMAGE_SIZE = 512  # long side style pictures are scaled to before their statistics are taken


def channel_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """N x C x H x W -> per-channel mean and standard deviation, N x C each."""
    flat = features.flatten(2)
    return flat.mean(dim=2), (flat.var(dim=2, unbiased=False) + EPS).sqrt()


def adain(content: torch.Tensor, style_mean: torch.Tensor, style_std: torch.Tensor) -> torch.Tensor:
    mean, std = channel_stats(content)
    normalized = (content - mean[:, :, None, None]) / std[:, :, None, None]
    return normalized * style_std[:, :, None, None] + style_mean[:, :, None, None]


def covariance(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """N x C x H x W -> mean (N x C) and covariance (N x C x C) of the channel vectors."""
    flat = features.flatten(2)
    mean = flat.mean(dim=2)
    centred = flat - mean[:, :, None]
    cov = centred @ centred.transpose(1, 2) / flat.shape[2]
    return mean, cov + EPS * torch.eye(cov.shape[1], device=cov.device, dtype=cov.dtype)


def sqrtm_newton_schulz(matrix: torch.Tensor, iterations: int = 15) -> tuple[torch.Tensor, torch.Tensor]:
    """Square root and inverse square root of SPD matrices N x C x C by the coupled
    Newton-Schulz iteration (Higham 2008), on the matrix scaled by its Frobenius norm."""
    n, c, _ = matrix.shape
    norm = matrix.flatten(1).norm(dim=1)[:, None, None]
    y = matrix / norm
    identity = torch.eye(c, device=matrix.device, dtype=matrix.dtype).expand(n, c, c)
    z = identity
    for _ in range(iterations):
        t = 0.5 * (3.0 * identity - z @ y)
        y, z = y @ t, t @ z
    return y * norm.sqrt(), z / norm.sqrt()


def wct(content: torch.Tensor, style_mean: torch.Tensor, style_colour: torch.Tensor) -> torch.Tensor:
    """Whitening and colouring; `style_colour` is the style covariance's square root."""
    n, c, h, w = content.shape
    mean, cov = covariance(content)
    _, whiten = sqrtm_newton_schulz(cov)
    flat = content.flatten(2) - mean[:, :, None]
    coloured = style_colour @ (whiten @ flat) + style_mean[:, :, None]
    return coloured.reshape(n, c, h, w)


def style_statistics(features: torch.Tensor, transform: str) -> tuple[torch.Tensor, torch.Tensor]:
    """What the decoder needs of a style: (mean, std) for AdaIN, (mean, sqrt(cov)) for WCT."""
    if transform == "adain":
        return channel_stats(features)
    mean, cov = covariance(features)
    root, _ = sqrtm_newton_schulz(cov)
    return mean, root


TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")  # VGG19's, each at half the resolution of the one before
CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512}


def taps_to(deepest: str) -> tuple[str, ...]:
    """The encoder's taps down to `deepest` (relu3_1 or relu4_1)."""
    if deepest not in ("relu3_1", "relu4_1"):
        raise ValueError(f"the deepest tap must be relu3_1 or relu4_1, got {deepest!r}")
    return TAPS[: TAPS.index(deepest) + 1]


class CompactEncoder(nn.Module):
    """A small CNN whose taps stand in for VGG19's relu1_1, relu2_1, relu3_1 (and relu4_1) (same
    channels, same resolutions), trained by distillation from VGG: RGB in [0, 1] -> dict of taps.

    VGG's taps are hundreds of times larger than a freshly initialized CNN's (RMS ~36, ~160,
    ~190 on photos against ~0.1, ~0.02, ~0.01), a gap Adam closes only over tens of thousands
    of steps. So the stages work at their natural scale and a fixed gain per tap maps them to
    VGG's: `gains` is set once from data before distillation (see `calibrate`) and saved.
    """

    gains: torch.Tensor  # one per tap, a buffer registered in __init__

    def __init__(self, width: int = 32, deepest: str = "relu3_1"):
        super().__init__()
        w = width
        self.taps = taps_to(deepest)
        self.register_buffer("gains", torch.ones(len(self.taps)))
        self.stage1 = nn.Sequential(ReflectConv(3, w, 3), nn.ReLU(), ReflectConv(w, 64, 3), nn.ReLU())
        self.stage2 = nn.Sequential(
            ReflectConv(64, 2 * w, 3, stride=2), nn.ReLU(), ReflectConv(2 * w, 128, 3), nn.ReLU()
        )
        self.stage3 = nn.Sequential(
            ReflectConv(128, 4 * w, 3, stride=2), nn.ReLU(), ReflectConv(4 * w, 256, 3), nn.ReLU()
        )
        self.stage4 = (
            nn.Sequential(ReflectConv(256, 8 * w, 3, stride=2), nn.ReLU(), ReflectConv(8 * w, 512, 3), nn.ReLU())
            if deepest == "relu4_1"
            else None
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        relu1 = self.stage1(x)  # N x 64 x H x W
        relu2 = self.stage2(relu1)  # N x 128 x H/2 x W/2
        relu3 = self.stage3(relu2)  # N x 256 x H/4 x W/4
        g = self.gains
        taps = {"relu1_1": g[0] * relu1, "relu2_1": g[1] * relu2, "relu3_1": g[2] * relu3}
        if self.stage4 is not None:
            taps["relu4_1"] = g[3] * self.stage4(relu3)  # N x 512 x H/8 x W/8
        return taps

    def forced(self, x: torch.Tensor, teacher: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The taps with each stage fed the teacher's (VGG's) previous tap instead of the stage
        before it (teacher forcing, for distillation: no stage inherits another's error). The
        teacher's tap is divided by that tap's gain, the scale the next stage sees when chained."""
        g = self.gains
        taps = {"relu1_1": g[0] * self.stage1(x)}  # N x 64 x H x W
        taps["relu2_1"] = g[1] * self.stage2(teacher["relu1_1"] / g[0])  # N x 128 x H/2 x W/2
        taps["relu3_1"] = g[2] * self.stage3(teacher["relu2_1"] / g[1])  # N x 256 x H/4 x W/4
        if self.stage4 is not None:
            taps["relu4_1"] = g[3] * self.stage4(teacher["relu3_1"] / g[2])  # N x 512 x H/8 x W/8
        return taps

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor, teacher: dict[str, torch.Tensor]) -> None:
        """Set each tap's gain so its RMS on `x` matches the teacher's taps (VGG's) on `x`."""
        self.gains.fill_(1.0)
        student = self(x)
        for i, tap in enumerate(self.taps):
            self.gains[i] = teacher[tap].pow(2).mean().sqrt() / student[tap].pow(2).mean().sqrt().clamp(min=1e-8)


class Decoder(nn.Module):
    """Features of the deepest tap (C x H/2^k x W/2^k: 256 at 1/4 or 512 at 1/8) -> RGB (3 x H x W):
    per resolution a convolution halving the channels, nearest upsampling, a convolution at the
    new resolution; reflection padding and no normalization (Huang & Belongie 2017)."""

    def __init__(self, channels: int = 256, upsamplings: int = 2):
        super().__init__()
        layers: list[nn.Module] = []
        c = channels
        for _ in range(upsamplings):  # N x c x h x w -> N x c/2 x 2h x 2w
            layers += [ReflectConv(c, c // 2, 3), nn.ReLU(), nn.Upsample(scale_factor=2, mode="nearest")]
            layers += [ReflectConv(c // 2, c // 2, 3), nn.ReLU()]
            c //= 2
        layers += [ReflectConv(c, 3, 3)]  # N x 3 x H x W
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


def instance_normalized(features: torch.Tensor) -> torch.Tensor:
    """N x C x H x W -> the same with each channel at zero mean and unit standard deviation."""
    mean, std = channel_stats(features)
    return (features - mean[:, :, None, None]) / std[:, :, None, None]


class SkipDecoder(nn.Module):
    """The plain decoder's layers with the content's shallower encoder taps joined back in, each at
    its resolution (a U-Net's skips): deepest tap (C x H/2^k x W/2^k) + the `skips` taps -> RGB.

    The style is still moved at the deepest tap alone. Each skip is instance-normalized first, so
    the content's own channel statistics (the texture energy the style term steers) stay out and
    only where things are comes through, and is added through a 1x1 convolution that starts at
    zero: untrained, the skips change nothing. `upsampling` "nearest" is the paper's; "bilinear"
    keeps the deepest tap's 8 px cells from drawing staircases along every edge.
    """

    def __init__(
        self, deepest: str = "relu4_1", skips: Sequence[str] = ("relu2_1", "relu3_1"), upsampling: str = "nearest"
    ):
        super().__init__()
        taps = taps_to(deepest)
        unknown = [t for t in skips if t not in taps[:-1]]
        if unknown:
            raise ValueError(f"skips must be taps shallower than {deepest}: {', '.join(taps[:-1])}; got {unknown}")
        if upsampling not in ("nearest", "bilinear"):
            raise ValueError(f"upsampling must be nearest or bilinear, got {upsampling!r}")
        self.resolutions = tuple(reversed(taps[:-1]))  # the tap at each resolution upsampled to, deepest first
        self.up, self.refine, self.skip = nn.ModuleList(), nn.ModuleList(), nn.ModuleDict()
        c = CHANNELS[deepest]
        for _ in self.resolutions:  # N x c x h x w -> N x c/2 x 2h x 2w, the channels of the tap there
            self.up.append(
                nn.Sequential(ReflectConv(c, c // 2, 3), nn.ReLU(), nn.Upsample(scale_factor=2, mode=upsampling))
            )
            self.refine.append(nn.Sequential(ReflectConv(c // 2, c // 2, 3), nn.ReLU()))
            c //= 2
        for tap in skips:
            join = nn.Conv2d(CHANNELS[tap], CHANNELS[tap], 1, bias=False)
            nn.init.zeros_(join.weight)
            self.skip[tap] = join
        self.out = ReflectConv(c, 3, 3)  # N x 3 x H x W

    def forward(self, features: torch.Tensor, taps: dict[str, torch.Tensor]) -> torch.Tensor:
        h = features
        for tap, up, refine in zip(self.resolutions, self.up, self.refine, strict=True):
            h = up(h)  # N x CHANNELS[tap] x the resolution of `tap`
            if tap in self.skip:
                h = h + self.skip[tap](instance_normalized(taps[tap]))
            h = refine(h)
        return self.out(h)


class ArbitraryStyleNet(nn.Module):
    """Image (N x 3 x H x W, multiples of `size_multiple`) + style statistics -> stylized image.

    `alpha` (N x 1) mixes the transformed features with the content's own: 1 is the full style.
    """

    def __init__(
        self,
        transform: str = "adain",
        encoder: str = "compact",
        width: int = 32,
        vgg_preprocessing: dict | None = None,
        deepest: str = "relu3_1",
        skips: Sequence[str] = (),
        upsampling: str = "nearest",
    ):
        """`encoder`: "compact" (distilled, self-contained) or "vgg" (the VGG19 prefix, whose
        weights then travel in the checkpoint; `vgg_preprocessing` as models.vgg.Preprocessing).
        `deepest`: the tap the features are moved at, relu3_1 or relu4_1. `skips`: shallower taps
        the decoder takes from the content as well (SkipDecoder, upsampling by `upsampling`); none:
        the paper's decoder."""
        super().__init__()
        if transform not in ("adain", "wct"):
            raise ValueError(f"transform must be adain or wct, got {transform!r}")
        self.transform = transform
        self.tap = deepest
        taps = taps_to(deepest)
        self.size_multiple = 2 ** (len(taps) - 1)  # the encoder halves the resolution len(taps) - 1 times
        if encoder == "compact":
            self.encoder: nn.Module = CompactEncoder(width, deepest)
        elif encoder == "vgg":
            preprocessing = (
                Preprocessing(**vgg_preprocessing)
                if vgg_preprocessing
                else Preprocessing("RGB", 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
            )
            self.encoder = VGGFeatures(list(taps), preprocessing)
        else:
            raise ValueError(f"encoder must be compact or vgg, got {encoder!r}")
        self.skips = tuple(skips)
        if upsampling != "nearest" and not self.skips:
            raise ValueError("upsampling is a setting of the decoder with skips; the paper's decoder upsamples nearest")
        self.decoder = (
            SkipDecoder(deepest, self.skips, upsampling)
            if self.skips
            else Decoder(CHANNELS[deepest], upsamplings=len(taps) - 1)
        )

    def decode(self, features: torch.Tensor, content_taps: dict[str, torch.Tensor]) -> torch.Tensor:
        """Moved deepest-tap features (and the content's encoder taps, for the skips) -> RGB."""
        return self.decoder(features, content_taps) if self.skips else self.decoder(features)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)[self.tap]

    def forward(
        self, x: torch.Tensor, style_mean: torch.Tensor, style_spread: torch.Tensor, alpha: torch.Tensor
    ) -> torch.Tensor:
        taps = self.encoder(x)
        features = taps[self.tap]  # N x 256 x H/4 x W/4 (relu3_1) or N x 512 x H/8 x W/8 (relu4_1)
        if self.transform == "adain":
            moved = adain(features, style_mean, style_spread)
        else:
            moved = wct(features, style_mean, style_spread)
        mixed = alpha[:, :, None, None] * moved + (1 - alpha[:, :, None, None]) * features
        return self.decode(mixed, taps)

    def example_conditions(self, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Style statistics of a random image (real enough for export and checks)."""
        image = torch.rand(1, 3, 64, 64, generator=generator)
        with torch.no_grad():
            mean, spread = style_statistics(self.encode(image), self.transform)
        alpha = torch.ones(batch, 1) if generator is None else torch.rand(batch, 1, generator=generator)
        return {
            "style_mean": mean.expand(batch, -1),
            "style_spread": spread.expand(batch, *spread.shape[1:]),
            "alpha": alpha,
        }


def style_picture_tensor(rgb: np.ndarray) -> torch.Tensor:
    """A uint8 H x W x 3 style picture as 1 x 3 x h x w in [0, 1], long side STYLE_IMAGE_SIZE."""
    h, w = rgb.shape[:2]
    scale = STYLE_IMAGE_SIZE / max(h, w)
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255
    size = (max(16, round(h * scale)), max(16, round(w * scale)))
    return torch.nn.functional.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


@torch.inference_mode()
def picture_statistics(net: ArbitraryStyleNet, rgb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """What an arbitrary-style model takes of a style picture (uint8 H x W x 3), in the runtime and
    as a teacher alike: its feature statistics for the model's transform (1 x C mean, and 1 x C std
    or 1 x C x C colouring matrix), on the CPU."""
    return style_statistics(net.encode(style_picture_tensor(rgb)), net.transform)


def interpolate_statistics(
    stats: list[tuple[torch.Tensor, torch.Tensor]], weights: list[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """A weighted mix of several styles' statistics (Huang & Belongie's style interpolation)."""
    total = sum(weights)
    mean = sum(w / total * m for (m, _), w in zip(stats, weights, strict=True))
    spread = sum(w / total * s for (_, s), w in zip(stats, weights, strict=True))
    return mean, spread  # type: ignore[return-value]


class StyleBankNet(nn.Module):
    """An arbitrary-style net with S styles' statistics held: image and style weights (N x S, rows
    summing to 1, as a multi-style net takes them) -> stylized image (a teacher for distilling a
    multi-style net from the arbitrary one, each style a painting, or a single-style net, S = 1)."""

    style_means: torch.Tensor  # buffers registered in __init__
    style_spreads: torch.Tensor

    def __init__(self, net: ArbitraryStyleNet, stats: list[tuple[torch.Tensor, torch.Tensor]]):
        super().__init__()
        self.net, self.size_multiple = net, net.size_multiple
        self.register_buffer("style_means", torch.cat([mean for mean, _ in stats]))  # S x C
        self.register_buffer("style_spreads", torch.cat([spread for _, spread in stats]))  # S x C or S x C x C

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        mean = style @ self.style_means  # N x C: the mix of the styles' statistics (Huang & Belongie)
        spread = (style @ self.style_spreads.flatten(1)).view(-1, *self.style_spreads.shape[1:])
        return self.net(x, mean, spread, torch.ones(x.shape[0], 1, device=x.device, dtype=x.dtype))
