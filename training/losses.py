"""Perceptual losses (Gatys et al. 2016, Johnson et al. 2016) as small callables.

Feature maps are N x C x H x W tensors from `models.vgg.VGGFeatures`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """N x C x H x W -> N x C x C, normalized by C*H*W as in Johnson et al.

    Computed in fp32 even under autocast: the sum over H*W overflows fp16 for large images.
    """
    n, c, h, w = features.shape
    flat = features.float().reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


class ContentLoss:
    """Mean squared feature difference on one layer."""

    def __init__(self, layer: str):
        self.layer = layer

    def __call__(self, output: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.mse_loss(output[self.layer].float(), target[self.layer].float())


class StyleLoss:
    """Sum over layers of the mean squared difference between Gram matrices.

    The mean over the C x C entries (as in pytorch/examples) rather than the plain sum keeps
    the layers within an order of magnitude of each other; with the sum, relu3_3 (256 channels)
    outweighs relu1_2 (64) about fifty-fold and colours stop transferring.
    `target_grams` are 1 x C x C (one style) and broadcast over the batch.
    """

    def __init__(self, target_grams: dict[str, torch.Tensor], layer_weights: dict[str, float] | None = None):
        self.target_grams = target_grams
        self.layer_weights = layer_weights or {name: 1.0 for name in target_grams}

    def __call__(self, output: dict[str, torch.Tensor], targets: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """`targets` (N x C x C per layer) replaces the fixed targets, e.g. a style per sample."""
        total = torch.zeros((), device=next(iter(output.values())).device)
        for name, target in (targets or self.target_grams).items():
            gram = gram_matrix(output[name])
            total = total + self.layer_weights[name] * F.mse_loss(gram, target.expand_as(gram))
        return total


def random_affine(
    n: int,
    height: int,
    width: int,
    max_shift: float,
    max_degrees: float,
    max_zoom: float,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """N x 2 x 3 affine matrices (normalized coordinates, as F.affine_grid takes them) for a
    small camera motion: a shift of up to `max_shift` pixels, a rotation of up to `max_degrees`
    and a zoom of up to 1 +- `max_zoom`. Drawn from `generator` (None: torch's global one)."""
    angle = (torch.rand(n, device=device, generator=generator) * 2 - 1) * math.radians(max_degrees)
    zoom = 1 + (torch.rand(n, device=device, generator=generator) * 2 - 1) * max_zoom
    shift = (torch.rand(n, 2, device=device, generator=generator) * 2 - 1) * max_shift
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    aspect = height / width  # rotate in pixel space, not in the stretched [-1, 1] square
    theta = torch.stack(
        [
            torch.stack([cos, -sin * aspect, shift[:, 0] * 2 / width], dim=1),
            torch.stack([sin / aspect, cos, shift[:, 1] * 2 / height], dim=1),
        ],
        dim=1,
    )
    return theta


def affine_grid(theta: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """N x H x W x 2 sampling grid of the affines `theta` for N x C x H x W images."""
    return F.affine_grid(theta, list(shape), align_corners=False)


def smooth_flow(
    n: int,
    height: int,
    width: int,
    max_flow: float,
    spacing: int,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """N x H x W x 2 displacement (normalized coordinates, x then y, as F.grid_sample reads them)
    of a smooth random flow: control points `spacing` pixels apart each move by up to `max_flow`
    pixels, independently, and bicubic interpolation fills in between (clamped to the bound).

    The shared clips' motion is local (a still camera; hands, a rabbit, cars moving against
    the background: on big_buck_bunny the flow left after fitting one affine to the whole
    frame is 1.7 px at the 90th percentile, 7 px at the 99th; benchmarks/clip_motion.py),
    which a warp of the whole frame never shows the network.
    """
    rows, cols = math.ceil(height / spacing) + 1, math.ceil(width / spacing) + 1
    unit = torch.rand(n, 2, rows, cols, device=device, generator=generator)  # N x 2 x rows x cols
    coarse = (unit * 2 - 1) * max_flow  # pixels
    fine = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)
    fine = fine.clamp(-max_flow, max_flow)  # bicubic overshoots its control points a little
    to_normalized = torch.tensor([2 / width, 2 / height], device=device).view(1, 2, 1, 1)
    return (fine * to_normalized).permute(0, 2, 3, 1)


def warp(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Resample N x C x H x W images at the N x H x W x 2 sampling `grid` (output pixel p takes
    the input at grid[p]); outside samples are zero."""
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def white_noise(like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Unit-variance noise, independent per pixel and channel: a raw sensor's."""
    return torch.randn(like.shape, dtype=like.dtype, device=like.device, generator=generator)


def video_noise(like: torch.Tensor, max_blur: float = 3.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Unit-variance noise shaped like the change between two frames of a still, compressed video.

    Measured on the car clip: what changes from frame to frame is mostly brightness (luma), and
    spatially correlated (likely codec blocks and denoised grain), not independent per pixel; a
    stylizer amplifies that 2 to 3 times more than white noise of the same power. So: luma plus
    half as much colour noise, blurred by a Gaussian whose sigma is drawn per sample,
    log-uniformly from 0.5 to `max_blur` px, then scaled back to unit variance.
    N x 3 x H x W -> N x 3 x H x W.
    """
    n, channels, h, w = like.shape
    max_blur = min(max_blur, (min(h, w) - 1) / 3)  # the kernel's reach (3 sigma) must fit the reflect padding
    luma = torch.randn(n, 1, h, w, device=like.device, generator=generator)
    noise = luma + 0.5 * torch.randn(n, channels, h, w, device=like.device, generator=generator)
    sigma = 0.5 * (max_blur / 0.5) ** torch.rand(n, device=like.device, generator=generator)  # N
    radius = math.ceil(3 * max_blur)
    taps = torch.arange(-radius, radius + 1, device=like.device, dtype=noise.dtype)
    kernel = torch.exp(-(taps[None] ** 2) / (2 * sigma[:, None] ** 2))  # N x K
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(channels, 0)  # N*C x K, one per map
    maps = noise.reshape(1, n * channels, h, w)  # grouped convolution: each map its own sample's sigma
    maps = F.conv2d(F.pad(maps, (radius, radius, 0, 0), mode="reflect"), kernel[:, None, None, :], groups=n * channels)
    maps = F.conv2d(F.pad(maps, (0, 0, radius, radius), mode="reflect"), kernel[:, None, :, None], groups=n * channels)
    blurred = maps.reshape(n, channels, h, w)
    return (blurred / blurred.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()).to(like.dtype)


def codec_noise(like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """`video_noise` blurred by up to 16 px instead of 3: also the coarse change of a codec's
    blocks and of a camera's exposure. On the bottle clip (a still camera) the frame-to-frame
    change keeps 54% of its power through a 3 px Gaussian blur and 30% through 8 px (the car
    clip's: 25% and 8%; `benchmarks/noise_response.py`), and raising `composition_vii-small`'s
    weight on `video_noise` (1e8 to 1.75e8) lowered its gain there on noise blurred by 3 px (2.1
    to 1.6) but raised it on noise blurred by 12 px (2.0 to 2.2): the coarse change was outside
    what it learned. Trained on this noise instead, at 1.5e8, it flickers on the bottle clip as
    the 1.75e8 run on `video_noise` does at an 8% lower style loss (docs/temporal-training.md),
    though its gain on 12 px noise there is no lower (2.4). N x 3 x H x W -> N x 3 x H x W.
    """
    return video_noise(like, max_blur=16.0, generator=generator)


class NoiseModel(Protocol):
    """Unit-variance noise shaped like `like` (N x 3 x H x W), drawn from `generator` (None: the global one)."""

    def __call__(self, like: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor: ...


# --temporal-noise: what re-noises the moved frame of the temporal loss
NOISE_MODELS: dict[str, NoiseModel] = {"white": white_noise, "video": video_noise, "codec": codec_noise}


@dataclass
class Motion:
    """A synthetic motion applied to a batch: the moved (and re-noised) images, the sampling
    grid that moved them and the pixels both frames cover."""

    moved: torch.Tensor  # N x 3 x H x W
    grid: torch.Tensor  # N x H x W x 2
    valid: torch.Tensor  # N x 1 x H x W, bool


class TemporalLoss:
    """Synthetic-motion stability: stylize(warp(x)) should equal warp(stylize(x)).

    A video's next frame is roughly the current one moved a little and re-noised; a stylizer
    that commutes with such motions does not flicker. Random small affine warps stand in for
    the camera's motion (so no video dataset or optical flow is needed), optionally a smooth
    random flow of up to `max_flow` pixels on top for objects moving on their own, Gaussian
    noise (`noise` its standard deviation, `noise_model` its shape: NOISE_MODELS) for the
    sensor and the codec. Its randomness comes from `generator` (None: torch's global one); a
    generator of its own leaves the global stream, and so the training crops, as they are
    without the loss, which makes a run with the loss and one without it see the same photos.
    The squared difference is averaged over pixels that both warps cover.

    Use: `motion = loss.move(x)`, stylize x and motion.moved (one batch: instance norm keeps
    the samples independent), then `loss(y, y_moved, motion)`.
    """

    def __init__(
        self,
        max_shift: float = 4.0,
        max_degrees: float = 2.0,
        max_zoom: float = 0.03,
        noise: float = 0.02,
        noise_model: str = "white",
        max_flow: float = 0.0,
        flow_spacing: int = 32,
        generator: torch.Generator | None = None,
    ):
        self.max_shift, self.max_degrees, self.max_zoom, self.noise = max_shift, max_degrees, max_zoom, noise
        self.noise_shape = NOISE_MODELS[noise_model]
        self.max_flow, self.flow_spacing = max_flow, flow_spacing
        self.generator = generator

    def move(self, x: torch.Tensor) -> Motion:
        n, _, h, w = x.shape
        theta = random_affine(n, h, w, self.max_shift, self.max_degrees, self.max_zoom, x.device, self.generator)
        grid = affine_grid(theta, x.shape)
        if self.max_flow:
            grid = grid + smooth_flow(n, h, w, self.max_flow, self.flow_spacing, x.device, self.generator)
        moved = warp(x, grid)
        moved = moved + self.noise * self.noise_shape(moved, generator=self.generator)
        valid = warp(torch.ones_like(x[:, :1]), grid) > 0.999
        return Motion(moved, grid, valid)

    def __call__(self, y: torch.Tensor, y_moved: torch.Tensor, motion: Motion) -> torch.Tensor:
        difference = (y_moved.float() - warp(y.float(), motion.grid)) ** 2
        return (difference * motion.valid).sum() / (motion.valid.sum() * 3).clamp(min=1)

    def of(self, stylize: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The loss of `stylize` on a random motion of `x` (for evaluation and tests)."""
        motion = self.move(x)
        return self(stylize(x), stylize(motion.moved), motion)


class FlatSceneLoss:
    """Stability on flat scenes: a low-contrast crop and that crop re-noised should stylize alike.

    Instance norm divides each frame by its own contrast, so on a flat scene (a wall, a sky, a
    road) it amplifies sensor noise into flicker that the motion pairs, drawn from ordinary
    photos, rarely show. Each crop's deviation from its mean colour is scaled by a contrast
    factor, log-uniform in [min_contrast, 1]; the noise is shaped by `noise_model`
    (NOISE_MODELS), as the temporal loss's, and drawn from `generator` as the temporal loss's is.

    Use: `flat, noisy = loss.pair(x)`, stylize both (in one batch), then `loss(y_flat, y_noisy)`.
    """

    def __init__(
        self,
        noise: float = 0.02,
        min_contrast: float = 0.03,
        noise_model: str = "white",
        generator: torch.Generator | None = None,
    ):
        self.noise, self.min_contrast = noise, min_contrast
        self.noise_shape = NOISE_MODELS[noise_model]
        self.generator = generator

    def pair(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """N x 3 x H x W crops -> their low-contrast copies and those copies re-noised."""
        mean = x.mean(dim=(2, 3), keepdim=True)
        log_contrast = torch.empty(x.shape[0], 1, 1, 1, device=x.device)
        log_contrast.uniform_(math.log(self.min_contrast), 0.0, generator=self.generator)
        flat = mean + log_contrast.exp() * (x - mean)
        return flat, flat + self.noise * self.noise_shape(flat, generator=self.generator)

    def __call__(self, y_flat: torch.Tensor, y_noisy: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(y_noisy.float(), y_flat.float())


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (anisotropic TV), N x C x H x W."""
    dh = (image[:, :, 1:, :] - image[:, :, :-1, :]).abs().mean()
    dw = (image[:, :, :, 1:] - image[:, :, :, :-1]).abs().mean()
    return dh + dw
