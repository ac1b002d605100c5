"""GAN losses and helpers shared by the pix2pix and CycleGAN trainers (small callables)."""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import nn

GAN_MODES = ("minimax", "lsgan", "wgangp")


class AdversarialLoss:
    """The generator's and the discriminator's GAN objectives on discriminator outputs.

    minimax: binary cross-entropy on logits (Goodfellow et al. 2014; the generator uses the
    non-saturating form); lsgan: least squares to 1/0 (Mao et al. 2017); wgangp: the critic's
    score difference (Arjovsky et al. 2017), with the gradient penalty below (Gulrajani et al.).
    """

    def __init__(self, mode: str):
        if mode not in GAN_MODES:
            raise ValueError(f"GAN mode must be one of {GAN_MODES}, got {mode!r}")
        self.mode = mode

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if self.mode == "minimax":
            return 0.5 * (
                F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
            )
        if self.mode == "lsgan":
            return 0.5 * (F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake)))
        return fake.mean() - real.mean()

    def generator(self, fake: torch.Tensor) -> torch.Tensor:
        if self.mode == "minimax":
            return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        if self.mode == "lsgan":
            return F.mse_loss(fake, torch.ones_like(fake))
        return -fake.mean()


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(||grad critic(x_hat)||_2 - 1)^2] on random interpolates of real and fake samples."""
    mix = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    between = (mix * real + (1 - mix) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(between).sum(), between, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """||G_BA(G_AB(a)) - a||_1 (Zhu et al. 2017)."""
    return F.l1_loss(reconstructed, original)


def identity_loss(mapped: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """||G_AB(b) - b||_1: a generator should leave images already in its target domain alone."""
    return F.l1_loss(mapped, original)


class ImagePool:
    """A history of generated images (Shrivastava et al. 2017): the discriminator sees a mix of
    the newest fakes and older ones, which damps oscillation. Half of the returned images are
    swapped for stored ones once the pool is full."""

    def __init__(self, size: int = 50):
        self.size = size
        self.images: list[torch.Tensor] = []

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return batch
        out = []
        for image in batch.detach():
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif random.random() < 0.5:
                index = random.randrange(self.size)
                out.append(self.images[index])
                self.images[index] = image
            else:
                out.append(image)
        return torch.stack(out)


def linear_decay(step: int, total: int, decay_from: int) -> float:
    """Learning-rate factor: 1 until `decay_from`, then linearly to 0 at `total` (CycleGAN)."""
    if step <= decay_from:
        return 1.0
    return max(0.0, 1.0 - (step - decay_from) / max(1, total - decay_from))
