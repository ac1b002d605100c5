"""What a feed-forward stylizer's output is compared with in training, apart from the temporal terms.

- `PerceptualObjective` (Johnson et al. 2016): content and Gram style losses on a VGG.
- `TeacherObjective` (distillation, Hinton et al. 2015 applied to images): the pixel difference
  to a trained model's output on the same crop. A small net learns a standard net's look this way
  at a fraction of the cost of a step with VGG losses (no VGG forward or backward on a CPU); or an
  arbitrary-style net's look for one painting, its statistics taken once; or a multi-style net's
  looks, each sample in its own style (from a multi-style net, or an arbitrary-style one given
  one painting per style).

Both are called with the crops x (N x 3 x h x w in [0, 1]), the output y and each sample's style
index, and return their weighted terms by name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from stylecast.core.errors import InputError
from stylecast.core.images import read_rgb
from stylecast.models.adain import (
    ArbitraryStyleNet,
    StyleBankNet,
    interpolate_statistics,
    picture_statistics,
)
from stylecast.models.checkpoint import Family
from stylecast.models.contract import far_padding
from stylecast.models.lpips import LPIPSUnavailable, load_lpips
from stylecast.models.vgg import VGGFeatures, VGGWeights
from stylecast.training.common import flag_checkpoint
from stylecast.training.losses import ContentLoss, StyleLoss, gram_matrix

log = logging.getLogger("stylecast.train")


def as_the_runtime_runs(
    net: Callable[..., torch.Tensor], x: torch.Tensor, margin: int, size_multiple: int, *conditions: torch.Tensor
) -> torch.Tensor:
    """net's output on x (N x 3 x h x w) and its other inputs, x fed as the runtime feeds it
    (realtime/processing.py): a reflected margin all round and reflection to the size multiple at
    the bottom and right, cropped off again."""
    m, k = margin, size_multiple
    h, w = x.shape[2:]
    extra_h, extra_w = far_padding(h, m, k), far_padding(w, m, k)
    padded = F.pad(x, (m, m + extra_w, m, m + extra_h), mode="reflect") if m or extra_h or extra_w else x
    return net(padded, *conditions)[:, :, m : m + h, m : m + w]


class PerceptualObjective:
    """content_weight * ||phi_c(y) - phi_c(x)||^2 + style_weight * sum_l w_l ||G_l(y) - G_l(style)||^2."""

    def __init__(
        self,
        vgg: VGGFeatures,
        style_grams: dict[str, torch.Tensor],  # S x C x C per style layer
        layer_weights: dict[str, float],
        content_layer: str,
        content_weight: float,
        style_weight: float,
        border: int = 0,
    ):
        self.vgg, self.style_grams, self.border = vgg, style_grams, border
        self.content_loss, self.style_loss = ContentLoss(content_layer), StyleLoss(style_grams, layer_weights)
        self.content_weight, self.style_weight = content_weight, style_weight

    @classmethod
    def build(
        cls,
        weights: VGGWeights,
        style_layers: list[str],
        content_layer: str,
        style_images: list[torch.Tensor],  # each 1 x 3 x H x W in [0, 1], on the device
        relative_layers: bool,
        content_weight: float,
        style_weight: float,
        device: torch.device,
        border: int = 0,
    ) -> PerceptualObjective:
        vgg = weights.build(style_layers + [content_layer]).to(device)
        with torch.no_grad():
            per_style = [vgg(image) for image in style_images]
            grams = {name: torch.cat([gram_matrix(f[name]) for f in per_style]) for name in style_layers}
        # relative: each layer's error over the painting's mean squared Gram entry there
        layer_weights = {n: 1.0 / float(g.pow(2).mean()) if relative_layers else 1.0 for n, g in grams.items()}
        return cls(vgg, grams, layer_weights, content_layer, content_weight, style_weight, border)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, chosen: torch.Tensor) -> dict[str, torch.Tensor]:
        if b := self.border:  # N x 3 x (h - 2b) x (w - 2b): see FastConfig.style_border
            x, y = x[:, :, b:-b, b:-b], y[:, :, b:-b, b:-b]
        features_y = self.vgg(y)
        terms = {}
        if self.content_weight:  # (off beside a teacher, which keeps the content)
            with torch.no_grad():
                features_x = self.vgg(x)
            terms["content"] = self.content_weight * self.content_loss(features_y, features_x)
        targets = {name: grams[chosen] for name, grams in self.style_grams.items()}
        terms["style"] = self.style_weight * self.style_loss(features_y, targets)  # after content: the sum's order
        return terms


class TeacherObjective:
    """teacher_weight * ||y - teacher(x)||^2 (mean over pixels), the teacher's output clamped to [0, 1]."""

    def __init__(
        self,
        teacher: torch.nn.Module,
        margin: int,
        size_multiple: int,
        weight: float,
        style_rows: torch.Tensor | None = None,  # S x T: a multi-style teacher's style weights per student style
    ):
        self.teacher, self.weight = teacher.requires_grad_(False), weight
        self.margin, self.size_multiple = margin, size_multiple
        self.style_rows = style_rows

    @classmethod
    def load(
        cls,
        spec: str,
        weight: float,
        device: torch.device,
        styles: Sequence[str] = (),
        style_names: Sequence[str] = (),
        multistyle: bool = False,
    ) -> TeacherObjective:
        """A shipped single-style model's name or a checkpoint path, fed as its contract says; or an
        arbitrary-style model painting the style pictures `styles` as the runtime would given them
        (several are mixed equally; for a `multistyle` student each is one of its styles); or a
        multi-style model painting each of `style_names`, which it must know. A multi-style student
        takes one of the last two."""
        ckpt = flag_checkpoint("--teacher", spec)
        contract = ckpt.contract
        if contract.range != (0.0, 1.0) or contract.channel_order != "RGB":
            raise InputError(
                f"--teacher {spec} takes {contract.channel_order} in {contract.range}; distillation feeds RGB in [0, 1]"
            )
        if ckpt.family is Family.MULTISTYLE:
            unknown = [name for name in style_names if name not in ckpt.styles]
            if unknown or not style_names:
                raise InputError(
                    f"--teacher {spec} paints {', '.join(ckpt.styles)}; not {', '.join(unknown) or 'unnamed styles'}"
                )
            columns = torch.tensor([ckpt.styles.index(name) for name in style_names])
            log.info("distilling from %s (%s) in %s", spec, ckpt.architecture, ", ".join(style_names))
            rows = F.one_hot(columns, len(ckpt.styles)).float().to(device)  # S x T
            return cls(ckpt.build().to(device), contract.margin, contract.size_multiple, weight, rows)
        if ckpt.family is Family.ARBITRARY and styles:
            net = ckpt.build().eval()
            assert isinstance(net, ArbitraryStyleNet)  # the family's architecture
            stats = [picture_statistics(net, read_rgb(path)) for path in styles]
            if multistyle:  # each style its own painting, in the student's order
                log.info(
                    "distilling from %s (%s) given %d paintings, one per style", spec, ckpt.architecture, len(styles)
                )
                bank, rows = stats, torch.eye(len(styles))  # S x S
            else:  # the pictures mixed equally into one style, whichever picture a crop drew
                log.info("distilling from %s (%s) given %d style image(s)", spec, ckpt.architecture, len(styles))
                bank, rows = [interpolate_statistics(stats, [1.0] * len(stats))], torch.ones(len(styles), 1)  # S x 1
            teacher = StyleBankNet(net, bank).to(device)
            return cls(teacher, contract.margin, contract.size_multiple, weight, rows.to(device))
        if multistyle:
            raise InputError(
                f"--teacher {spec} is a {ckpt.family} model; a multi-style net learns from a multi-style or arbitrary-style one"
            )
        if ckpt.family is not Family.JOHNSON:
            raise InputError(
                f"--teacher {spec} is a {ckpt.family} model; distillation takes a single-style, multi-style or arbitrary-style one"
            )
        log.info("distilling from %s (%s, %s)", spec, ckpt.architecture, ", ".join(ckpt.styles))
        return cls(ckpt.build().to(device), contract.margin, contract.size_multiple, weight)

    @torch.no_grad()
    def target(self, x: torch.Tensor, chosen: torch.Tensor | None = None) -> torch.Tensor:
        """The teacher's output on x (N x 3 x h x w), fed as the runtime feeds it; a multi-style
        teacher paints each sample in its style (`chosen`, N student style indices)."""
        conditions = [] if self.style_rows is None or chosen is None else [self.style_rows[chosen]]
        return as_the_runtime_runs(self.teacher, x, self.margin, self.size_multiple, *conditions).float().clamp(0, 1)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, chosen: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"teacher": self.weight * F.mse_loss(y.float(), self.target(x, chosen))}


class LpipsObjective:
    """weight * LPIPS(y, x), the mean over the batch: N x 3 x h x w in [0, 1] each."""

    def __init__(self, net: str, folder: str | None, weight: float, device: torch.device):
        try:
            self.lpips = load_lpips(net, folder).to(device)
        except LPIPSUnavailable as exc:
            raise InputError(f"--lpips-weight: {exc}") from None
        self.weight = weight

    def __call__(self, x: torch.Tensor, y: torch.Tensor, chosen: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"lpips": self.weight * self.lpips(y, x).mean()}


class SummedObjective:
    """Several objectives' terms together (distillation with the painting's Gram matrices, LPIPS
    beside the VGG losses)."""

    def __init__(self, *parts: TeacherObjective | PerceptualObjective | LpipsObjective | SummedObjective):
        self.parts = parts

    def __call__(self, x: torch.Tensor, y: torch.Tensor, chosen: torch.Tensor) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        for part in self.parts:
            terms |= part(x, y, chosen)
        return terms
