"""Building blocks shared by the feed-forward stylizers.

Convolutions pad by reflection by default (Johnson et al. 2016, supplementary): zero padding
makes dark borders appear in stylized output. The small CPU network pads with zeros instead,
inside the convolution, because a separate reflection-pad op costs about a third of its run
time in ONNX Runtime. Upsampling is nearest-neighbour followed by a convolution instead of a
transposed convolution (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts"), which
removes the checkerboard pattern.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ReflectConv(nn.Sequential):
    """Reflection padding + convolution, so output size = ceil(input / stride)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.ReflectionPad2d(kernel // 2),
            nn.Conv2d(in_ch, out_ch, kernel, stride=stride, groups=groups),
        )


def padded_conv(
    in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, reflect: bool = True
) -> nn.Module:
    if reflect:
        return ReflectConv(in_ch, out_ch, kernel, stride, groups)
    return nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, groups=groups)


class SeparableConv(nn.Sequential):
    """Depthwise kxk then pointwise 1x1 (MobileNet): ~k*k times fewer multiply-adds."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, reflect: bool = True):
        super().__init__(
            padded_conv(in_ch, in_ch, kernel, stride, groups=in_ch, reflect=reflect),
            nn.Conv2d(in_ch, out_ch, 1),
        )


def conv(
    in_ch: int, out_ch: int, kernel: int, stride: int = 1, separable: bool = False, reflect: bool = True
) -> nn.Module:
    if separable:
        return SeparableConv(in_ch, out_ch, kernel, stride, reflect)
    return padded_conv(in_ch, out_ch, kernel, stride, reflect=reflect)


class Blur(nn.Module):
    """3x3 binomial low-pass per channel ([1, 2, 1] x [1, 2, 1] / 16; zero at the Nyquist
    frequency), zero padded (or reflected, as the convolution it precedes): before a stride-2 convolution it removes what the subsampling
    would alias, so the output follows a one-pixel move of the input instead of jumping
    between the four sampling phases (Zhang 2019, "Making Convolutional Networks
    Shift-Invariant Again")."""

    def __init__(self, channels: int, reflect: bool = False):
        super().__init__()
        self.reflect = reflect
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = (taps[:, None] * taps[None, :] / 16).expand(channels, 1, 3, 3).clone()  # C x 1 x 3 x 3
        self.kernel: torch.Tensor
        self.register_buffer("kernel", kernel, persistent=False)  # fixed: not a weight, not saved
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reflect:
            return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.kernel.to(x.dtype), groups=self.channels)
        return F.conv2d(x, self.kernel.to(x.dtype), padding=1, groups=self.channels)


class ConvBlock(nn.Sequential):
    """conv -> instance norm -> ReLU, optionally preceded by a 2x upsample (nearest; bilinear
    when anti-aliased) or, for an anti-aliased strided convolution, by a Blur."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int = 1,
        upsample: bool = False,
        separable: bool = False,
        reflect: bool = True,
        antialias: bool = False,
        norm_eps: float = 1e-5,
    ):
        layers: list[nn.Module] = [upsample_2x(antialias)] if upsample else []
        layers += [Blur(in_ch, reflect)] if antialias and stride > 1 else []
        layers += [
            conv(in_ch, out_ch, kernel, stride, separable, reflect),
            nn.InstanceNorm2d(out_ch, eps=norm_eps, affine=True),
            nn.ReLU(inplace=True),
        ]
        super().__init__(*layers)


def upsample_2x(antialias: bool) -> nn.Upsample:
    # nearest repeats each pixel 2x2, a pattern fixed to the pixel grid that a moving picture
    # slides across; bilinear interpolates between the samples instead
    return nn.Upsample(scale_factor=2, mode="bilinear" if antialias else "nearest")


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with instance norm and an identity shortcut (He et al. 2016)."""

    def __init__(self, channels: int, separable: bool = False, reflect: bool = True, norm_eps: float = 1e-5):
        super().__init__()
        self.body = nn.Sequential(
            conv(channels, channels, 3, separable=separable, reflect=reflect),
            nn.InstanceNorm2d(channels, eps=norm_eps, affine=True),
            nn.ReLU(inplace=True),
            conv(channels, channels, 3, separable=separable, reflect=reflect),
            nn.InstanceNorm2d(channels, eps=norm_eps, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)

    def start_as_identity(self) -> None:
        """Zero the last norm's scale and shift: the block passes its input through unchanged, and
        the scale's gradient (the normalized activations) is not zero, so it still learns."""
        last_norm = self.body[-1]
        assert isinstance(last_norm, nn.InstanceNorm2d)
        nn.init.zeros_(last_norm.weight)
        nn.init.zeros_(last_norm.bias)


class ConditionalInstanceNorm(nn.Module):
    """Dumoulin et al. 2017, "A Learned Representation for Artistic Style": instance norm whose
    scale and shift are mixed from per-style ones by the style weights (N x S, rows sum to 1).
    One-hot weights select a style; fractional weights blend styles."""

    def __init__(self, channels: int, num_styles: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.scale = nn.Parameter(torch.ones(num_styles, channels))
        self.shift = nn.Parameter(torch.zeros(num_styles, channels))

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        gamma = (style @ self.scale)[:, :, None, None]  # N x C x 1 x 1
        beta = (style @ self.shift)[:, :, None, None]
        return self.norm(x) * gamma + beta


class CondConvBlock(nn.Module):
    """ConvBlock with conditional instance norm: [upsample] -> conv -> CIN(style) -> ReLU."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        num_styles: int,
        stride: int = 1,
        upsample: bool = False,
        reflect: bool = True,
    ):
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest") if upsample else nn.Identity()
        self.conv = conv(in_ch, out_ch, kernel, stride, reflect=reflect)
        self.norm = ConditionalInstanceNorm(out_ch, num_styles)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(self.upsample(x)), style))


class CondResidualBlock(nn.Module):
    """ResidualBlock with conditional instance norm."""

    def __init__(self, channels: int, num_styles: int, separable: bool = False, reflect: bool = True):
        super().__init__()
        self.conv1 = conv(channels, channels, 3, separable=separable, reflect=reflect)
        self.norm1 = ConditionalInstanceNorm(channels, num_styles)
        self.conv2 = conv(channels, channels, 3, separable=separable, reflect=reflect)
        self.norm2 = ConditionalInstanceNorm(channels, num_styles)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm1(self.conv1(x), style))
        return x + self.norm2(self.conv2(y), style)


# Per output phase a (even or odd full-resolution row), the low-resolution taps x[i-1], x[i],
# x[i+1] that a 3-tap convolution k[-1], k[0], k[1] reads through a 2x upsampling: row r of the
# matrix weighs k's taps for x[i-1+r]. Nearest: U[2i] = U[2i+1] = x[i]; bilinear (half-pixel
# centres): U[2i] = x[i-1]/4 + 3x[i]/4, U[2i+1] = 3x[i]/4 + x[i+1]/4.
UPSAMPLING_PHASES = {
    "nearest": (
        torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]),
        torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
    ),
    "bilinear": (
        torch.tensor([[0.75, 0.25, 0.0], [0.25, 0.75, 0.75], [0.0, 0.0, 0.25]]),
        torch.tensor([[0.25, 0.0, 0.0], [0.75, 0.75, 0.25], [0.0, 0.25, 0.75]]),
    ),
}


class SubpixelUpsampleConv(nn.Module):
    """A 2x upsampling followed by a zero-padded 3x3 convolution, computed at the low resolution:
    one 3x3 convolution giving the four output phases as channels, then a pixel shuffle
    (Shi et al. 2016). The same arithmetic without the upsampled tensor, which at full
    resolution is most of the small net's memory traffic.

    Nearest upsampling gives exactly the layers' output. Bilinear clamps at the edge, which
    replicate padding reproduces, but the convolution's zero padding of the upsampled picture
    has no low-resolution counterpart: the outermost pixel ring differs, the interior agrees to
    float rounding (tests/test_models.py). Use it where that ring is cropped off again.
    """

    def __init__(self, mode: str, conv: nn.Conv2d):
        super().__init__()
        if conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.padding != (1, 1) or conv.groups != 1:
            raise ValueError("fuses a 3x3, stride 1, zero-padded, ungrouped convolution")
        self.padding = "replicate" if mode == "bilinear" else "constant"
        even, odd = UPSAMPLING_PHASES[mode]
        k = conv.weight.detach()  # O x I x 3 x 3
        phases = [torch.einsum("pk,oikl,ql->oipq", a, k, b) for a in (even, odd) for b in (even, odd)]
        out_ch, in_ch = k.shape[:2]
        self.conv = nn.Conv2d(in_ch, 4 * out_ch, 3)
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(out_ch)
        with torch.no_grad():  # channel o * 4 + 2 * row phase + column phase: pixel_shuffle's order
            self.conv.weight.copy_(torch.stack(phases, 1).reshape(4 * out_ch, in_ch, 3, 3))
            self.conv.bias.copy_(bias.repeat_interleave(4))  # type: ignore[union-attr]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (1, 1, 1, 1), mode=self.padding)  # N x I x (h + 2) x (w + 2)
        return F.pixel_shuffle(self.conv(padded), 2)  # N x O x 2h x 2w


def fuses_output(mode: str, margin: int) -> bool:
    """Whether `fused_output` fuses: bilinear upsampling changes the outermost pixel ring, so only
    where the runtime's reflected margin crops it off; nearest is exact, so always."""
    return mode == "nearest" or margin >= 1


def fused_output(output: nn.Module, margin: int) -> nn.Module:
    """A small net's output layer (2x upsampling, then a 3x3 convolution to RGB) as a
    SubpixelUpsampleConv where `fuses_output` allows, else as it is."""
    if not isinstance(output, nn.Sequential):  # fused already
        return output
    upsample, conv = output[0], output[1]
    assert isinstance(upsample, nn.Upsample) and isinstance(upsample.mode, str) and isinstance(conv, nn.Conv2d)
    return SubpixelUpsampleConv(upsample.mode, conv) if fuses_output(upsample.mode, margin) else output
