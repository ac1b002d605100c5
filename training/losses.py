"""Perceptual losses (Gatys et al. 2016, Johnson et al. 2016) as small callables.

Feature maps are N x C x H x W tensors from `models.vgg.VGGFeatures`.
"""

from __future__ import annotations

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

    def __call__(self, output: dict[str, torch.Tensor]) -> torch.Tensor:
        total = torch.zeros((), device=next(iter(output.values())).device)
        for name, target in self.target_grams.items():
            gram = gram_matrix(output[name])
            total = total + self.layer_weights[name] * F.mse_loss(gram, target.expand_as(gram))
        return total


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (anisotropic TV), N x C x H x W."""
    dh = (image[:, :, 1:, :] - image[:, :, :-1, :]).abs().mean()
    dw = (image[:, :, :, 1:] - image[:, :, :, :-1]).abs().mean()
    return dh + dw
