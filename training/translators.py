"""Image-to-image translation with GANs: pix2pix (Isola et al. 2017) and CycleGAN (Zhu et al. 2017).

pix2pix learns from aligned pairs (x, y): G is a U-Net (or the ResNet generator), D a PatchGAN
that sees x next to y or G(x);  L_G = GAN(D(x, G(x))) + l1_weight * |G(x) - y|_1.
Pairs come from two folders, side-by-side images, or free from any photo folder: edges or
grayscale computed from the photo (models/pairs.py, applied the same way at run time).

CycleGAN learns from two unpaired folders: G_AB, G_BA (ResNet generators by default, or U-Nets,
whose skips carry the fine detail through), D_A, D_B (PatchGANs);
L_G = GAN_B(G_AB(a)) + GAN_A(G_BA(b)) + cycle_weight * (|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|)
      + identity_weight * (|G_AB(b) - b| + |G_BA(a) - a|),
with a history pool of fakes for the discriminators and a learning rate that decays linearly
over the second half of training. Images are in [-1, 1] inside; the checkpoints say so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import Dataset
from torchvision.utils import make_grid
from tqdm import tqdm

from stylecast.core.errors import InputError
from stylecast.core.images import write_rgb
from stylecast.models.checkpoint import Checkpoint, Family, InputContract, save_checkpoint
from stylecast.models.pairs import PAIRS, pair_input
from stylecast.models.patchgan import PatchDiscriminator
from stylecast.models.resnet_generator import ResnetGenerator
from stylecast.models.unet_generator import UPSAMPLES, UnetGenerator
from stylecast.training.common import (
    MAX_SEED,
    Distributed,
    Scalars,
    autocast_for,
    check_choices,
    endless_batches,
    init_distributed,
    load_state,
    log_dry_run,
    option,
    run_folder,
    save_config,
    save_state,
    seed_everything,
    weight_checksums,
)
from stylecast.training.data import PairedCrops, RandomCrops
from stylecast.training.gan import (
    GAN_MODES,
    AdversarialLoss,
    ImagePool,
    cycle_loss,
    gradient_penalty,
    identity_loss,
    linear_decay,
)

log = logging.getLogger("stylecast.train")
GENERATORS = ("unet", "resnet")
NORMS = ("instance", "batch")


@dataclass
class TranslatorConfig:
    """Shared by `stylecast train pix2pix` and `stylecast train cyclegan`."""

    # a resumed run must have these as the run that wrote the state had them (the rest may change)
    RESUME_IDENTITY: ClassVar[tuple[str, ...]] = (
        "pairs",
        "generator",
        "unet_depth",
        "unet_upsample",
        "resnet_blocks",
        "width",
        "norm",
        "d_layers",
        "gan",
    )

    out: str = option("translator.pt", "the trained generator checkpoint (.pt); CycleGAN also writes <out>-BtoA.pt")
    data: str | None = option(None, "pix2pix with free pairs: a folder of photos")
    pairs: str = option("edges", "pix2pix free pairs: the input made from each photo", choices=PAIRS)
    data_a: str | None = option(
        None, "pix2pix: inputs (paired with --data-b by file name), or side-by-side AB images; CycleGAN: domain A"
    )
    data_b: str | None = option(None, "pix2pix: targets; CycleGAN: domain B")
    generator: str | None = option(
        None, "default: unet for pix2pix, resnet for CycleGAN (as in their papers)", choices=GENERATORS
    )
    unet_depth: int = option(7, "U-Net levels: 7 for 128-pixel inputs, 8 for 256", at_least=1)
    unet_upsample: str = option(
        "transpose",
        "U-Net decoder: transpose (the paper's) | resize (nearest x2 + 3x3 conv: no checkerboard grid)",
        choices=UPSAMPLES,
    )
    resnet_blocks: int = option(9, "residual blocks of the ResNet generator (6 or 9)", at_least=1)
    width: int = option(64, "generator and discriminator base width", at_least=1)
    norm: str = option("instance", "normalisation layers", choices=NORMS)
    d_layers: int = option(3, "PatchGAN stride-2 layers (3: 70x70 patches)", at_least=1)
    gan: str = option("lsgan", "the adversarial loss", choices=GAN_MODES)
    steps: int = option(20000, "optimizer steps", at_least=1)
    decay_from: int | None = option(
        None, "step where the learning rate starts its linear decay to 0; default: half way", at_least=0
    )
    batch_size: int = option(4, "images per step", at_least=1)
    scale_size: int = option(143, "images are scaled so their short side is this", at_least=32)
    crop_size: int = option(128, "then randomly cropped to this square", at_least=32)
    lr: float = option(2e-4, "Adam learning rate (beta1 0.5)", positive=True)
    l1_weight: float = option(100.0, "pix2pix: weight of |G(x) - y|_1", at_least=0)
    cycle_weight: float = option(10.0, "CycleGAN: weight of the cycle-consistency losses", at_least=0)
    identity_weight: float = option(5.0, "CycleGAN: weight of the identity losses", at_least=0)
    gp_weight: float = option(10.0, "wgangp: weight of the gradient penalty", at_least=0)
    pool_size: int = option(50, "CycleGAN: generated images kept for the discriminators", at_least=0)
    seed: int = option(0, "random seed", at_least=0, at_most=MAX_SEED)
    device: str = option("auto", "auto | cpu | cuda | cuda:N")
    amp: bool = option(True, "mixed precision on CUDA")
    workers: int = option(0, "DataLoader worker processes", at_least=0)
    checkpoint_every: int = option(500, "steps between resume states and sample grids", at_least=1)
    run_dir: str | None = option(None, "resume state, config.json, samples, TensorBoard; default <out>.run/")
    half: bool = option(True, "store the weights in fp16")
    dry_run: bool = option(False, "run two steps to check the setup and time a step; write nothing")

    def __post_init__(self) -> None:
        check_choices(self)


def to_signed(x: torch.Tensor) -> torch.Tensor:
    return x * 2 - 1


def to_unit(x: torch.Tensor) -> torch.Tensor:
    return (x + 1) / 2


Generator = UnetGenerator | ResnetGenerator


def build_generator(config: TranslatorConfig, kind: str) -> tuple[str, dict[str, Any], Generator]:
    if kind == "unet":
        kwargs: dict[str, Any] = {
            "depth": config.unet_depth,
            "width": config.width,
            "norm": config.norm,
            "upsample": config.unet_upsample,
        }
        return "unet_generator", kwargs, UnetGenerator(**kwargs)
    kwargs = {"width": config.width, "blocks": config.resnet_blocks, "norm": config.norm}
    return "resnet_generator", kwargs, ResnetGenerator(**kwargs)


def check_crop(config: TranslatorConfig, generator: Generator) -> None:
    if config.crop_size % generator.size_multiple:
        raise InputError(
            f"--crop-size {config.crop_size} must be a multiple of {generator.size_multiple} for this generator"
        )


def loader(dataset: Dataset, config: TranslatorConfig, ranks: Distributed) -> Iterator:
    return endless_batches(dataset, config.batch_size, ranks, config.seed, config.workers)


def adam(module: nn.Module, config: TranslatorConfig) -> torch.optim.Adam:
    return torch.optim.Adam(module.parameters(), lr=config.lr, betas=(0.5, 0.999))


def translator_checkpoint(
    architecture: str, kwargs: dict, module: Generator, training: dict, transform: str | None, name: str
) -> Checkpoint:
    return Checkpoint(
        architecture=architecture,
        kwargs=kwargs,
        state_dict={k: v.detach().cpu().clone() for k, v in module.state_dict().items()},
        contract=InputContract(
            range=(-1.0, 1.0), size_multiple=module.size_multiple, output_range=(-1.0, 1.0), transform=transform
        ),
        family=Family.TRANSLATOR,
        styles=[name],
        training=training,
    )


def write_samples(path: Path, rows: list[torch.Tensor]) -> None:
    """A grid: one row per tensor group (inputs, outputs, targets), values in [-1, 1]."""
    grid = make_grid(torch.cat([to_unit(r[:4].float().cpu()).clamp(0, 1) for r in rows]), nrow=min(4, rows[0].shape[0]))
    write_rgb(path, (grid.permute(1, 2, 0) * 255).round().byte().numpy())


class Trainer:
    """What both translators share: devices, run folder, resume, logging, the step loop's edges."""

    def __init__(self, config: TranslatorConfig, name: str, progress: bool):
        self.config = config
        self.ranks, self.device = init_distributed(config.device)
        seed_everything(config.seed)
        self.out = Path(config.out)
        self.run_dir = run_folder(config)
        self.writes = self.ranks.is_main and not config.dry_run  # rank 0 of a real run
        self.autocast, self.scaler = autocast_for(self.device, config.amp and config.gan != "wgangp")
        self.name, self.progress = name, progress
        self.decay_from = config.decay_from if config.decay_from is not None else config.steps // 2

    def wrap(self, module: nn.Module) -> nn.Module:
        module.to(self.device).train()
        return (
            DDP(module, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            if self.ranks.enabled
            else module
        )

    def steps(self, resumables: dict) -> Iterator[int]:
        # the run folder appears only now, once the data and models were accepted
        start = 0 if self.config.dry_run else load_state(self.run_dir, resumables, self.config)
        if self.writes:
            save_config(self.config, self.run_dir)
        self.scalars = Scalars(self.run_dir, enabled=self.writes)
        last = min(self.config.steps, start + 2) if self.config.dry_run else self.config.steps
        torch.manual_seed(self.config.seed + self.ranks.rank)
        started = time.perf_counter()
        bar = tqdm(
            total=last,
            initial=start,
            disable=None if self.progress and self.ranks.is_main else True,
            desc=f"train {self.name}",
            unit="step",
        )
        for step in range(start + 1, last + 1):
            factor = linear_decay(step, self.config.steps, self.decay_from)
            for optimizer in (m for m in resumables.values() if isinstance(m, torch.optim.Optimizer)):
                for group in optimizer.param_groups:
                    group["lr"] = self.config.lr * factor
            yield step
            bar.update(1)
            if self.writes and (step % self.config.checkpoint_every == 0 or step == self.config.steps):
                save_state(self.run_dir, step, resumables)
        bar.close()
        if self.config.dry_run:
            log_dry_run(last - start, time.perf_counter() - started, self.config.steps)

    def report(self, step: int, values: dict[str, float]) -> None:
        self.scalars.add(step, {f"loss/{k}": v for k, v in values.items()})
        if self.writes and step % self.config.checkpoint_every == 0:
            log.info("step %d/%d %s", step, self.config.steps, " ".join(f"{k}={v:.4g}" for k, v in values.items()))

    def sample(self, step: int, rows: list[torch.Tensor]) -> None:
        if self.writes and step % self.config.checkpoint_every == 0:
            write_samples(self.run_dir / f"samples_{step:07d}.png", rows)

    def finish(self, generator: nn.Module) -> bool:
        """True on the process that writes the results (none after a dry run)."""
        self.scalars.close()
        self.config_record = vars(self.config) | {
            "world_size": self.ranks.world_size,
            "rank_checksums": weight_checksums(generator, self.ranks),
        }
        if self.ranks.enabled:
            dist.barrier()
            dist.destroy_process_group()
        return self.writes

    def backward(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            loss.backward()
            optimizer.step()


def discriminator_loss(
    adversarial: AdversarialLoss, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, gp_weight: float
) -> torch.Tensor:
    loss = adversarial.discriminator(critic(real), critic(fake))
    if adversarial.mode == "wgangp":
        loss = loss + gp_weight * gradient_penalty(critic, real, fake)
    return loss


def train_pix2pix(config: TranslatorConfig, progress: bool = True) -> Path | None:
    trainer = Trainer(config, "pix2pix", progress)
    device = trainer.device
    if config.data:
        photos = loader(RandomCrops(config.data, config.scale_size, config.crop_size), config, trainer.ranks)
        transform: str | None = config.pairs

        def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            for photo in photos:
                yield pair_input(config.pairs, photo), photo

        name = f"{config.pairs}-to-photo"
    elif config.data_a:
        transform, name = None, f"{Path(config.data_a).name}-to-{Path(config.data_b).name if config.data_b else 'B'}"
        pairs = loader(
            PairedCrops(config.data_a, config.data_b, config.scale_size, config.crop_size), config, trainer.ranks
        )

        def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            yield from pairs
    else:
        raise InputError("pix2pix needs --data (free pairs) or --data-a [--data-b] (paired images)")

    architecture, kwargs, generator = build_generator(config, config.generator or "unet")
    check_crop(config, generator)
    discriminator = PatchDiscriminator(6, config.width, config.d_layers, config.norm)
    g, d = trainer.wrap(generator), trainer.wrap(discriminator)
    g_opt, d_opt = adam(generator, config), adam(discriminator, config)
    adversarial = AdversarialLoss(config.gan)
    resumables = {"generator": generator, "discriminator": discriminator, "g_optimizer": g_opt, "d_optimizer": d_opt}
    stream = batches()
    for step in trainer.steps(resumables):
        x, y = next(stream)
        x, y = to_signed(x.to(device)), to_signed(y.to(device))  # N x 3 x crop x crop in [-1, 1]
        with trainer.autocast:
            fake = g(x)
            d_loss = discriminator_loss(
                adversarial, d, torch.cat([x, y], 1), torch.cat([x, fake.detach()], 1), config.gp_weight
            )
        trainer.backward(d_loss, d_opt)
        with trainer.autocast:
            adv = adversarial.generator(d(torch.cat([x, fake], 1)))
            l1 = F.l1_loss(fake, y)
            g_loss = adv + config.l1_weight * l1
        trainer.backward(g_loss, g_opt)
        trainer.report(step, {"d": float(d_loss.detach()), "g_gan": float(adv.detach()), "l1": float(l1.detach())})
        trainer.sample(step, [x, fake.detach(), y])
    if not trainer.finish(generator):
        return None
    save_checkpoint(
        translator_checkpoint(architecture, kwargs, generator, trainer.config_record, transform, name),
        trainer.out,
        half=config.half,
    )
    return trainer.out


def train_cyclegan(config: TranslatorConfig, progress: bool = True) -> Path | None:
    if not (config.data_a and config.data_b):
        raise InputError("CycleGAN needs --data-a and --data-b (two unpaired folders)")
    trainer = Trainer(config, "cyclegan", progress)
    device = trainer.device
    domain_a = loader(RandomCrops(config.data_a, config.scale_size, config.crop_size), config, trainer.ranks)
    domain_b = loader(RandomCrops(config.data_b, config.scale_size, config.crop_size), config, trainer.ranks)
    architecture, kwargs, g_ab = build_generator(config, config.generator or "resnet")
    _, _, g_ba = build_generator(config, config.generator or "resnet")
    check_crop(config, g_ab)
    d_a, d_b = (PatchDiscriminator(3, config.width, config.d_layers, config.norm) for _ in range(2))
    G_ab, G_ba, D_a, D_b = (trainer.wrap(m) for m in (g_ab, g_ba, d_a, d_b))
    g_opt = torch.optim.Adam([*g_ab.parameters(), *g_ba.parameters()], lr=config.lr, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam([*d_a.parameters(), *d_b.parameters()], lr=config.lr, betas=(0.5, 0.999))
    adversarial = AdversarialLoss(config.gan)
    pool_a, pool_b = ImagePool(config.pool_size), ImagePool(config.pool_size)
    resumables = {"g_ab": g_ab, "g_ba": g_ba, "d_a": d_a, "d_b": d_b, "g_optimizer": g_opt, "d_optimizer": d_opt}
    for step in trainer.steps(resumables):
        a, b = to_signed(next(domain_a).to(device)), to_signed(next(domain_b).to(device))
        with trainer.autocast:  # generators: fool both critics, close both cycles, keep targets as they are
            fake_b, fake_a = G_ab(a), G_ba(b)
            adv = adversarial.generator(D_b(fake_b)) + adversarial.generator(D_a(fake_a))
            cycle = cycle_loss(G_ba(fake_b), a) + cycle_loss(G_ab(fake_a), b)
            identity = (
                identity_loss(G_ab(b), b) + identity_loss(G_ba(a), a)
                if config.identity_weight
                else torch.zeros((), device=device)
            )
            g_loss = adv + config.cycle_weight * cycle + config.identity_weight * identity
        trainer.backward(g_loss, g_opt)
        with trainer.autocast:  # critics: real against pooled fakes
            d_loss = discriminator_loss(adversarial, D_b, b, pool_b(fake_b), config.gp_weight)
            d_loss = d_loss + discriminator_loss(adversarial, D_a, a, pool_a(fake_a), config.gp_weight)
        trainer.backward(d_loss, d_opt)
        trainer.report(
            step,
            {
                "g_gan": float(adv.detach()),
                "cycle": float(cycle.detach()),
                "identity": float(identity.detach()),
                "d": float(d_loss.detach()),
            },
        )
        trainer.sample(step, [a, fake_b.detach(), b, fake_a.detach()])
    if not trainer.finish(nn.ModuleList([g_ab, g_ba])):
        return None
    a_name, b_name = Path(config.data_a).name, Path(config.data_b).name
    save_checkpoint(
        translator_checkpoint(architecture, kwargs, g_ab, trainer.config_record, None, f"{a_name}-to-{b_name}"),
        trainer.out,
        half=config.half,
    )
    reverse = trainer.out.with_name(f"{trainer.out.stem}-BtoA{trainer.out.suffix}")
    save_checkpoint(
        translator_checkpoint(architecture, kwargs, g_ba, trainer.config_record, None, f"{b_name}-to-{a_name}"),
        reverse,
        half=config.half,
    )
    return trainer.out
