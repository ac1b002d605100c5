"""Gatys et al. 2016, "Image Style Transfer Using Convolutional Neural Networks": optimize the
image itself. Slow, but it is the quality reference the feed-forward networks are judged by.

loss = content_weight * ||phi_c(x) - phi_c(content)||^2
     + style_weight   * sum_l ||G_l(x) - sum_s w_s G_l(style_s)||^2
     + tv_weight      * TV(x)

Several styles are mixed by a weighted average of their Gram matrices. Style weight 0 gives
feature inversion (an image rebuilt from its features alone when started from noise); content
weight 0 gives texture synthesis. Colour can be preserved by transferring luminance only, or by
first matching the style's colour statistics to the content's (Gatys et al. 2016b).
Coarse-to-fine: each scale starts from the previous result, upsampled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from stylecast.models.color import rgb_to_ycbcr, ycbcr_to_rgb
from stylecast.models.vgg import VGGFeatures
from stylecast.training.common import MAX_SEED, check_choices, option, required
from stylecast.training.losses import ContentLoss, StyleLoss, gram_matrix, total_variation

log = logging.getLogger("stylecast.optimize")

COLOR_MODES = ("none", "luminance", "match")
INITS = ("content", "noise")
OPTIMIZERS = ("lbfgs", "adam")
GATYS_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass
class GatysConfig:
    content: str = required("the content image")
    styles: tuple[str, ...] = required("style images, each optionally with a weight: painting.jpg:0.7")
    out: str = required("the result image")
    size: int = option(512, "long side of the result in pixels", at_least=32)
    scales: int = option(1, "coarse-to-fine: optimize at this many scales, halving each time", at_least=1)
    steps: int = option(100, "optimizer iterations at each scale", at_least=1)
    optimizer: str = option("lbfgs", "the optimizer", choices=OPTIMIZERS)
    lr: float = option(1.0, "learning rate (1 for L-BFGS; ~0.05 for Adam, which steps in logit space)", positive=True)
    init: str = option("content", "the image the optimization starts from", choices=INITS)
    # Gatys et al.'s VGG19 layers; the style weight gives 1e3 x the mean over the five layers
    content_weight: float = option(1.0, "weight of the content loss (0: texture synthesis)", at_least=0)
    style_weight: float = option(
        200.0, "weight of the Gram style loss, summed over the layers (0: feature inversion)", at_least=0
    )
    tv_weight: float = option(0.0, "weight of total variation", at_least=0)
    content_layer: str = option("relu4_2", "VGG layer of the content loss")
    style_layers: tuple[str, ...] = option(GATYS_STYLE_LAYERS, "VGG layers of the style loss")
    style_size: int = option(512, "long side the style images are scaled to", at_least=32)
    preserve_color: str = option("none", "keep the content's colours", choices=COLOR_MODES)
    vgg_weights: str | None = option(None, "local VGG19 weights (else $STYLECAST_VGG_WEIGHTS or torchvision)")
    device: str = option("auto", "auto | cpu | cuda")
    seed: int = option(0, "random seed (noise initialization)", at_least=0, at_most=MAX_SEED)

    def __post_init__(self) -> None:
        check_choices(self)


def match_color(style: torch.Tensor, content: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Recolour `style` (1x3xHxW) so its pixels have the mean and covariance of `content`'s:
    x' = C_c^(1/2) C_s^(-1/2) (x - mu_s) + mu_c."""

    def stats(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = image.reshape(3, -1)
        mean = pixels.mean(dim=1, keepdim=True)
        centred = pixels - mean
        return mean, centred @ centred.T / pixels.shape[1] + eps * torch.eye(3, device=image.device)

    def sqrtm(matrix: torch.Tensor, power: float) -> torch.Tensor:
        values, vectors = torch.linalg.eigh(matrix)
        return vectors @ torch.diag(values.clamp(min=eps) ** power) @ vectors.T

    mu_s, cov_s = stats(style[0])
    mu_c, cov_c = stats(content[0])
    transform = sqrtm(cov_c, 0.5) @ sqrtm(cov_s, -0.5)
    recoloured = transform @ (style[0].reshape(3, -1) - mu_s) + mu_c
    return recoloured.reshape(style.shape).clamp(0, 1)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W RGB -> the luminance repeated in three channels."""
    return rgb_to_ycbcr(image)[:, :1].expand(-1, 3, -1, -1)


def mixed_grams(
    vgg: VGGFeatures, styles: list[tuple[torch.Tensor, float]], layers: list[str]
) -> dict[str, torch.Tensor]:
    """The weighted average of the styles' Gram matrices, layer by layer."""
    total = sum(weight for _, weight in styles)
    grams: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for image, weight in styles:
            features = vgg(image)
            for name in layers:
                grams[name] = grams.get(name, 0) + gram_matrix(features[name]) * (weight / total)
    return grams


def optimize_image(
    vgg: VGGFeatures,
    content: torch.Tensor,
    grams: dict[str, torch.Tensor],
    init: torch.Tensor,
    config: GatysConfig,
    content_layer: str,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> torch.Tensor:
    """Optimize the pixels of `init` (1x3xHxW in [0, 1]) for the Gatys loss; returns the image."""
    with torch.no_grad():
        content_features = vgg(content)
    content_loss, style_loss = ContentLoss(content_layer), StyleLoss(grams)
    # optimize logits: image = sigmoid(z) stays in (0, 1) without clamping, which would corrupt
    # L-BFGS's curvature history
    z = torch.logit(init.detach().clamp(0.01, 0.99)).contiguous().requires_grad_(True)
    if config.optimizer == "lbfgs":
        # all iterations in one call (L-BFGS keeps its history and stopping rules within a
        # call), with a line search: the loss spans many orders of magnitude
        optimizer: torch.optim.Optimizer = torch.optim.LBFGS(
            [z], lr=config.lr, max_iter=config.steps, history_size=50, line_search_fn="strong_wolfe"
        )
    else:
        optimizer = torch.optim.Adam([z], lr=config.lr)
    values: dict[str, float] = {}

    def closure() -> float:
        optimizer.zero_grad()
        image = torch.sigmoid(z)
        features = vgg(image)
        terms = {
            "content": config.content_weight * content_loss(features, content_features),
            "style": config.style_weight * style_loss(features),
            "tv": config.tv_weight * total_variation(image),
        }
        total = terms["content"] + terms["style"] + terms["tv"]
        total.backward()
        values.update({k: float(v.detach()) for k, v in terms.items()})
        evaluations[0] += 1
        if progress is not None and evaluations[0] <= config.steps:
            progress(evaluations[0], dict(values))
        return float(total.detach())

    evaluations = [0]
    if config.optimizer == "lbfgs":
        optimizer.step(closure)
    else:
        for _ in range(config.steps):
            optimizer.step(closure)
    return torch.sigmoid(z).detach()


def scale_to(image: torch.Tensor, long_side: int) -> torch.Tensor:
    h, w = image.shape[2:]
    factor = long_side / max(h, w)
    size = (max(16, round(h * factor)), max(16, round(w * factor)))
    return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)


def stylize_image(
    content: np.ndarray,
    styles: list[tuple[np.ndarray, float]],
    vgg: VGGFeatures,
    config: GatysConfig,
    device: torch.device,
    show_progress: bool = True,
) -> np.ndarray:
    """The whole method on uint8 RGB arrays: colour handling, scales, optimization."""
    from stylecast.training.data import to_tensor

    torch.manual_seed(config.seed)
    content_full = to_tensor(content)[None].to(device)
    style_images = [(scale_to(to_tensor(s)[None].to(device), config.style_size), w) for s, w in styles]
    if config.preserve_color == "match":
        style_images = [(match_color(s, content_full), w) for s, w in style_images]
    lum = config.preserve_color == "luminance"
    style_layers = [name for name in config.style_layers if name in vgg.taps]
    grams = mixed_grams(vgg, [(luminance(s) if lum else s, w) for s, w in style_images], style_layers)

    sizes = [max(32, config.size // 2**k) for k in reversed(range(config.scales))]
    image: torch.Tensor | None = None
    bar = tqdm(total=config.steps * len(sizes), disable=None if show_progress else True, desc="optimize", unit="step")
    for size in sizes:
        target = scale_to(content_full, size)
        target = luminance(target) if lum else target
        if image is None:
            image = target.clone() if config.init == "content" else torch.rand_like(target)
        else:
            image = F.interpolate(image, size=target.shape[2:], mode="bilinear", align_corners=False)

        def report(step: int, values: dict[str, float], size: int = size) -> None:
            bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()} | {"size": size})
            bar.update(1)

        image = optimize_image(vgg, target, grams, image, config, config.content_layer, report)
    bar.close()
    assert image is not None
    if lum:  # stylized luminance, the content's own chroma
        chroma = rgb_to_ycbcr(F.interpolate(content_full, size=image.shape[2:], mode="bilinear", align_corners=False))
        image = ycbcr_to_rgb(torch.cat([rgb_to_ycbcr(image)[:, :1], chroma[:, 1:]], dim=1)).clamp(0, 1)
    return (image[0].permute(1, 2, 0) * 255).round().byte().cpu().numpy()
