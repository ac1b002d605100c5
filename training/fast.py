"""Train a feed-forward stylizer: Johnson et al. 2016 for one style, or the multi-style network
(Dumoulin et al. 2017) for several, each training step drawing a style per sample.

loss = content_weight * ||phi_c(f(x)) - phi_c(x)||^2
     + style_weight   * sum_l ||G_l(f(x)) - G_l(style)||_F^2
     + tv_weight      * TV(f(x))

with phi the feature taps of the loss network (VGG16 as in Johnson et al., or VGG19) and G the
Gram matrices. `stylecast train fast` and
`stylecast train multistyle` are the command-line fronts; `train(config)` is the whole loop.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from stylecast.core.errors import InputError
from stylecast.models.checkpoint import (
    Checkpoint,
    Family,
    InputContract,
    save_checkpoint,
)
from stylecast.models.contract import MAX_MARGIN
from stylecast.models.johnson import TransformerNet
from stylecast.models.layers import ResidualBlock
from stylecast.models.lpips import NETS as LPIPS_NETS
from stylecast.models.multistyle import MultiStyleSmallNet, MultiStyleTransformerNet
from stylecast.models.small import SmallTransformerNet
from stylecast.models.vgg import ARCHITECTURES, ENV_WEIGHTS, load_vgg
from stylecast.training.common import (
    MAX_SEED,
    Scalars,
    autocast_for,
    check_choices,
    cosine_lr,
    endless_batches,
    flag_checkpoint,
    init_distributed,
    load_state,
    log_dry_run,
    option,
    required,
    run_folder,
    save_config,
    save_state,
    seed_everything,
    weight_checksums,
)
from stylecast.training.data import RandomCrops, style_image_tensor
from stylecast.training.losses import NOISE_MODELS, FlatSceneLoss, Motion, TemporalLoss, total_variation
from stylecast.training.objectives import (
    LpipsObjective,
    PerceptualObjective,
    SummedObjective,
    TeacherObjective,
    as_the_runtime_runs,
)

Objective = PerceptualObjective | TeacherObjective | SummedObjective

log = logging.getLogger("stylecast.train")

# --temporal-rng: "own" draws the temporal terms from a generator of their own, "shared" from the crops' one
TEMPORAL_RNGS = ("own", "shared")
STYLE_LAYER_WEIGHTS = ("equal", "relative")
TEMPORAL_STREAM = 0x7E4  # tells the temporal terms' seed sequence apart from any other drawn from --seed

StylizerNet = TransformerNet | SmallTransformerNet | MultiStyleTransformerNet | MultiStyleSmallNet
# --net, by role: "standard", "small" (the real-time CPU net, as the default is), "multistyle" and
# "multistyle_small"; the earlier small variants by what sets them apart. Each is an architecture
# key in models.ARCHITECTURES (the module), its class and constructor arguments.
STANDARD = {"width": 32, "residual_blocks": 5, "outer_kernel": 9}
SMALL = {"width": 16, "residual_blocks": 5, "stem_kernel": 5}
NETS: dict[str, tuple[str, type[StylizerNet], dict[str, Any]]] = {
    "standard": ("johnson", TransformerNet, STANDARD),
    # anti-aliased, instance norms that leave a flat frame's noise alone (epsilon 1e-3), and
    # reflection padding at 1/4 and 1/8 resolution (no painted frame): the default's net
    "small": (
        "johnson_small",
        SmallTransformerNet,
        {**SMALL, "antialias": True, "norm_eps": 1e-3, "reflect_deep": True},
    ),
    "small_plain": ("johnson_small", SmallTransformerNet, SMALL),
    "small_aa": ("johnson_small", SmallTransformerNet, {**SMALL, "antialias": True}),
    "small_aa_eps": ("johnson_small", SmallTransformerNet, {**SMALL, "antialias": True, "norm_eps": 1e-3}),
    # multi-style: the same sizes with conditional instance norm; num_styles comes from --style
    "multistyle": ("multistyle", MultiStyleTransformerNet, STANDARD),
    "multistyle_small": ("multistyle_small", MultiStyleSmallNet, SMALL),
}
# Johnson et al. use VGG16's relu2_2 for content and relu1_2, relu2_2, relu3_3, relu4_3 for style.
# Layers the weights lack (a file may stop early, as the old relu3_4 one does) are dropped, and logged.
PREFERRED_STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
# earlier names, still accepted: the default's net was "small_aa_eps_reflect"
NET_ALIASES = {"small_aa_eps_reflect": "small"}


@dataclass
class FastConfig:
    """Every knob of a Johnson training run; saved to the run folder and into the checkpoint."""

    # a resumed run must have these as the run that wrote the state had them (the rest may change)
    RESUME_IDENTITY: ClassVar[tuple[str, ...]] = ("style", "style_names", "net")

    style: tuple[str, ...] = required("the style image (several for a multi-style net)")
    data: str = required("folder of training photos")
    out: str = required("the trained model checkpoint (.pt) written at the end")
    net: str = option(
        "standard",
        "network: standard | small (the real-time CPU net, the default's) | multistyle | multistyle_small |"
        " the earlier small variants small_plain, small_aa (anti-aliased), small_aa_eps (and instance-norm"
        " epsilon 1e-3); small_aa_eps_reflect is an old name of small",
        choices=(*NETS, *NET_ALIASES),
    )
    residual_blocks: int | None = option(
        None,
        "residual blocks at the net's lowest resolution (default: the net's own, 5); with --init from the same"
        " net with fewer, the new blocks are appended as identities, so training starts from its pictures",
        at_least=1,
    )
    steps: int = option(2000, "optimizer steps", at_least=1)
    stop_after: int | None = option(
        None,
        "end the run after this step and write --out there, the learning rate following the schedule of --steps"
        " (a checkpoint chosen from the middle of a run, reproduced from its record)",
        at_least=1,
    )
    batch_size: int = option(4, "images per step", at_least=1)
    scale_size: int = option(
        320, "photos are scaled so their short side is this (the resolution you will run at)", at_least=32
    )
    crop_size: int = option(192, "random square crop taken from each scaled photo", at_least=32)
    style_size: int = option(
        512, "the style image is scaled so its long side is this (bigger: bigger strokes)", at_least=32
    )
    lr: float = option(1e-3, "Adam learning rate", positive=True)
    lr_final: float = option(
        1.0, "learning rate at the last step, as a fraction of --lr (cosine decay; 1 = constant)", at_least=0
    )
    # the defaults are pytorch/examples' for torchvision's VGG16 (inputs normalized by ImageNet's std);
    # the Caffe VGG19 (inputs 0..255) gives ~1e4 times larger content losses: content 1, style 5-20
    content_weight: float = option(1e5, "weight of the content (feature reconstruction) loss", at_least=0)
    style_weight: float = option(1e10, "weight of the Gram style loss", at_least=0)
    tv_weight: float = option(0.0, "weight of the total-variation smoothness loss", at_least=0)
    temporal_weight: float = option(
        0.0, "weight of the synthetic-motion stability loss (0: off); reduces flicker in video", at_least=0
    )
    temporal_noise: str = option(
        "white",
        "the temporal loss's noise: white (independent per pixel, a sensor's) | video (mostly brightness,"
        " spatially correlated, as a compressed video's frames change: steadier on still, flat scenes) |"
        " codec (video noise up to 16 px coarse, as a codec's blocks and a camera's exposure also change)",
        choices=NOISE_MODELS,
    )
    temporal_flow: float = option(
        0.0,
        "the temporal loss also moves parts of the crop against each other, by up to this many pixels"
        " (a smooth random flow, control points 32 px apart; 0: the camera's motion only), as objects"
        " move in front of a still camera",
        at_least=0,
    )
    flat_scene_weight: float = option(
        0.0,
        "with --temporal-weight: a low-contrast crop and its copy re-noised (--temporal-noise) must stylize"
        " alike, weighted this many times the temporal weight (0: off); damps noise flicker on flat scenes",
        at_least=0,
    )
    temporal_rng: str = option(
        "own",
        "where the temporal and flat-scene terms draw their motions and noise: own (a generator of their own,"
        " seeded from --seed, so the run sees the same crops in the same order as the same seed without"
        " those terms: a paired control) | shared (torch's global generator, which the crops come from too:"
        " how the shipped models were trained, and what training.shipped keeps to reproduce them)",
        choices=TEMPORAL_RNGS,
    )
    loss_network: str = option("vgg16", "the network the losses are measured with", choices=ARCHITECTURES)
    content_layer: str = option("relu2_2", "VGG layer of the content loss")
    style_layers: tuple[str, ...] = option(
        PREFERRED_STYLE_LAYERS, "VGG layers of the style loss (missing ones are dropped)"
    )
    style_layer_weights: str = option(
        "equal",
        "equal: the layers' Gram errors are summed as they are (on the Caffe VGG19 relu4_1's outweighs"
        " relu1_1's ~1000-fold) | relative: each is divided by the painting's mean squared Gram entry"
        " at that layer, so colours, strokes and shapes all count",
        choices=STYLE_LAYER_WEIGHTS,
    )
    vgg_weights: str | None = option(
        None,
        f"weights file of --loss-network; default ${ENV_WEIGHTS['vgg16']} / ${ENV_WEIGHTS['vgg19']}, else torchvision's download",
    )
    style_names: tuple[str, ...] | None = option(
        None, "style names recorded in the checkpoint; default: the files' stems"
    )
    teacher: str | None = option(
        None,
        "learn to reproduce this trained model (a shipped name or a checkpoint) instead of the VGG losses:"
        " distillation, several times cheaper per step on a CPU; the temporal terms still apply. An"
        " arbitrary-style model (e.g. arbitrary) paints --style for it (for a multi-style net, each picture"
        " its style); a multi-style one paints each of the styles it knows by name (--style-names)",
    )
    teacher_weight: float = option(1e9, "with --teacher: weight of the mean squared pixel difference", at_least=0)
    teacher_style_weight: float = option(
        0.0,
        "with --teacher: also match the painting's Gram matrices on --style-layers with this weight (a pixel"
        " loss alone blurs the teacher's strokes, which move from crop to crop; 0: off)",
        at_least=0,
    )
    lpips_weight: float = option(
        0.0,
        "weight of LPIPS from the output to its photo (what `stylecast eval quality` reports): keeps what a"
        " person sees of the photo while a strong style term pulls away from it; 0: off",
        at_least=0,
    )
    lpips_net: str = option("vgg", "with --lpips-weight: the LPIPS backbone", choices=LPIPS_NETS)
    lpips_weights: str | None = option(
        None, "with --lpips-weight: LPIPS weights folder (else $STYLECAST_LPIPS_WEIGHTS or the lpips package)"
    )
    style_border: int = option(
        0,
        "the Gram terms leave out this many pixels at each edge of the output: zero padding tells the net"
        " where its edges are, and it learns to paint there a texture, independent of the picture, that"
        " the Gram matrices reward (stripes along the left edge); 0: the whole crop",
        at_least=0,
    )
    init: str | None = option(
        None,
        "start from this checkpoint's or shipped model's weights (same network): fine-tune, e.g. add the temporal loss",
    )
    margin: int | None = option(
        None,
        "reflected pixels the runtime adds around each frame and crops off again, declared in the checkpoint"
        " (default: the net's own, 8 for the small nets); more for a net that learned to paint near the edge",
        at_least=0,
        at_most=MAX_MARGIN,
    )
    margin_in_training: bool = option(
        False,
        "the net learns on crops with the --margin around them, reflected and cropped off again as the"
        " runtime does: what it paints there is never scored, what a user sees always is (off: the crop"
        " alone, the net's own edge inside the scored picture)",
    )
    seed: int = option(0, "random seed", at_least=0, at_most=MAX_SEED)
    device: str = option("auto", "auto | cpu | cuda | cuda:N")
    amp: bool = option(True, "mixed precision: on CUDA, and bf16 on a CPU with bf16 arithmetic (AVX512-BF16, AMX)")
    workers: int = option(0, "DataLoader worker processes", at_least=0)
    checkpoint_every: int = option(100, "steps between resume states and model snapshots", at_least=1)
    log_every: int = option(10, "steps between TensorBoard scalars", at_least=1)
    run_dir: str | None = option(None, "resume state, config.json and TensorBoard logs; default: <out>.run/")
    half: bool = option(True, "store the weights in fp16 (half the size; outputs differ by < 1/255)")
    dry_run: bool = option(False, "run two steps to check the setup and time a step; write nothing")

    def __post_init__(self) -> None:
        if isinstance(self.style, str):  # one style image given as a plain path
            self.style = (self.style,)
        self.net = NET_ALIASES.get(self.net, self.net)
        check_choices(self)
        if 2 * self.style_border >= self.crop_size:
            raise InputError(f"--style-border {self.style_border} leaves nothing of a {self.crop_size} px crop")
        if self.stop_after is not None and self.stop_after > self.steps:
            raise InputError(f"--stop-after {self.stop_after} is past --steps {self.steps}")
        if self.flat_scene_weight and not self.temporal_weight:
            raise InputError("--flat-scene-weight is a multiple of --temporal-weight; give that too")


def temporal_generator(config: FastConfig, rank: int, device: torch.device) -> torch.Generator | None:
    """The temporal terms' own generator (None: they share torch's global one with the crops).

    Its seed is derived from (--seed, rank) rather than equal to it: the same seed would replay
    the crops' own uniform numbers as motions, tying each crop's position to its warp.
    """
    if config.temporal_rng == "shared":
        return None
    seed = int(np.random.SeedSequence([config.seed, rank, TEMPORAL_STREAM]).generate_state(1)[0])
    return torch.Generator(device).manual_seed(seed)


def style_names(config: FastConfig) -> list[str]:
    """The styles' names as the checkpoint records them (and a multi-style teacher knows them)."""
    return list(config.style_names or [Path(p).stem for p in config.style])


def choose_layers(config: FastConfig, available: tuple[str, ...]) -> tuple[list[str], str]:
    style = [name for name in config.style_layers if name in available]
    if not style:
        raise InputError(f"none of the style layers {config.style_layers} exist in the VGG weights ({available})")
    if config.content_layer not in available:
        raise InputError(f"content layer {config.content_layer} is not in the VGG weights ({available})")
    return style, config.content_layer


def image_objective(config: FastConfig, device: torch.device) -> tuple[Objective, dict[str, Any]]:
    """The teacher's or the VGG losses' terms, with LPIPS to the photo beside them if --lpips-weight;
    and what to record of it."""
    objective, record = painting_objective(config, device)
    if not config.lpips_weight:
        return objective, record
    lpips = LpipsObjective(config.lpips_net, config.lpips_weights, config.lpips_weight, device)
    return SummedObjective(objective, lpips), record


def painting_objective(config: FastConfig, device: torch.device) -> tuple[Objective, dict[str, Any]]:
    """The teacher's outputs (--teacher, with the painting's Gram matrices if
    --teacher-style-weight), else the VGG losses; and what to record of it."""
    if config.teacher:
        multistyle = config.net.startswith("multistyle")
        teacher = TeacherObjective.load(
            config.teacher, config.teacher_weight, device, config.style, style_names(config), multistyle
        )
        if not config.teacher_style_weight:
            return teacher, {"teacher": config.teacher}
        style_only = dataclasses.replace(config, content_weight=0.0, style_weight=config.teacher_style_weight)
        perceptual, record = perceptual_objective(style_only, device)
        return SummedObjective(teacher, perceptual), {"teacher": config.teacher, **record}
    return perceptual_objective(config, device)


def perceptual_objective(config: FastConfig, device: torch.device) -> tuple[PerceptualObjective, dict[str, Any]]:
    """Content and Gram style losses on the loss network; and what to record of it."""
    weights = load_vgg(config.vgg_weights, config.loss_network)
    style_layers, content_layer = choose_layers(config, weights.available)
    dropped = [name for name in config.style_layers if name not in style_layers]
    log.info(
        "loss network %s; style layers %s, content layer %s%s",
        weights.describe(),
        style_layers,
        content_layer,
        f" (not in these weights: {dropped})" if dropped else "",
    )
    objective = PerceptualObjective.build(
        weights,
        style_layers,
        content_layer,
        [style_image_tensor(path, config.style_size).to(device) for path in config.style],
        config.style_layer_weights == "relative",
        config.content_weight,
        config.style_weight,
        device,
        config.style_border,
    )
    return objective, {"vgg_source": weights.source, "style_layers_used": style_layers}


def start_from(net: torch.nn.Module, architecture: str, kwargs: dict, path: str) -> None:
    """Load a trained checkpoint's (or shipped model's) weights into `net`: the same network, or
    the same with fewer residual blocks, whose missing last blocks start as identities."""
    ckpt = flag_checkpoint("--init", path)
    blocks = kwargs["residual_blocks"]
    init_blocks = ckpt.kwargs.get("residual_blocks", blocks)
    # the multi-style nets' blocks take style weights and have no identity start
    new_blocks = [
        b for b in list(net.get_submodule("residuals").children())[init_blocks:] if isinstance(b, ResidualBlock)
    ]
    same_but_depth = (ckpt.architecture, {**ckpt.kwargs, "residual_blocks": blocks}) == (architecture, kwargs)
    if not same_but_depth or init_blocks > blocks or len(new_blocks) != blocks - init_blocks:
        raise InputError(
            f"--init {path} is a {ckpt.architecture} {ckpt.kwargs}, not the {architecture} {kwargs} being trained"
        )
    net.load_state_dict({name: t.float() for name, t in ckpt.state_dict.items()}, strict=not new_blocks)
    for block in new_blocks:
        block.start_as_identity()


class StepInputs(NamedTuple):
    """What one training step draws: its crops, their styles and the frames the net stylizes."""

    x: torch.Tensor  # N x 3 x crop x crop, [0, 1]
    chosen: torch.Tensor  # N: each sample's style index
    frames: list[torch.Tensor]  # x, then (temporal loss) x moved, then (flat-scene term) x flattened and re-noised
    motion: Motion | None  # the temporal loss's move of x


@dataclass
class TrainResult:
    checkpoint: Path | None  # None after a dry run, and on ranks other than 0
    steps: int  # steps run in this call (0 when resumed at the end)
    history: list[dict[str, float]]  # weighted losses per step of this call
    seconds: float


def train(config: FastConfig, progress: bool = True) -> TrainResult:
    """Train (under torchrun: one process per device, DistributedDataParallel, rank 0 writes)."""
    ranks, device = init_distributed(config.device)
    seed_everything(config.seed)  # the same initial weights on every rank
    out = Path(config.out)
    run_dir = run_folder(config)
    writes = ranks.is_main and not config.dry_run

    objective, record = image_objective(config, device)
    names = style_names(config)
    multistyle = config.net.startswith("multistyle")
    motions = temporal_generator(config, ranks.rank, device)
    temporal_loss = TemporalLoss(noise_model=config.temporal_noise, max_flow=config.temporal_flow, generator=motions)
    flat_scene_loss = FlatSceneLoss(noise_model=config.temporal_noise, generator=motions)

    dataset = RandomCrops(config.data, config.scale_size, config.crop_size)
    # per process: the global batch is world_size times batch_size
    batches = endless_batches(dataset, config.batch_size, ranks, config.seed, config.workers)

    architecture, net_class, net_kwargs = NETS[config.net]
    if multistyle:
        net_kwargs = {"num_styles": len(config.style), **net_kwargs}
    if config.residual_blocks:
        net_kwargs = {**net_kwargs, "residual_blocks": config.residual_blocks}
    net = net_class(**net_kwargs)
    if config.init:
        start_from(net, architecture, net_kwargs, config.init)
    net = net.to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    autocast, scaler = autocast_for(device, config.amp, cpu_bf16=True)
    resumables = {"model": net, "optimizer": optimizer, "scaler": scaler}
    start = 0 if config.dry_run else load_state(run_dir, resumables, config)
    if writes:  # the run folder appears only once the style, data and VGG were accepted
        save_config(config, run_dir)
    if start:
        log.info("resumed from %s at step %d", run_dir, start)
    model = DDP(net, device_ids=[device.index] if device.type == "cuda" else None) if ranks.enabled else net
    torch.manual_seed(config.seed + ranks.rank)  # different crops on every rank
    scalars = Scalars(run_dir, enabled=writes)
    if scalars.missing:
        log.info("tensorboard is not installed; install stylecast[train] for TensorBoard logs")

    margin = getattr(net_class, "margin", 0) if config.margin is None else config.margin

    def snapshot(step: int) -> Checkpoint:
        return Checkpoint(
            architecture=architecture,
            kwargs=dict(net_kwargs),
            state_dict={k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
            contract=InputContract(size_multiple=net_class.size_multiple, margin=margin),
            family=Family.MULTISTYLE if multistyle else Family.JOHNSON,
            styles=names,
            training={
                **vars(config),
                **record,
                "device_used": str(device),
                "autocast_dtype": str(getattr(autocast, "fast_dtype", "off")),
                "world_size": ranks.world_size,
                "steps_taken": step,
            },
        )

    end = config.stop_after or config.steps
    last = min(end, start + 2) if config.dry_run else end
    bar = tqdm(
        total=last,
        initial=start,
        disable=None if progress and ranks.is_main else True,
        desc=f"train {config.net}",
        unit="step",
    )
    started = time.perf_counter()
    history: list[dict[str, float]] = []

    def next_inputs() -> StepInputs:
        """Everything random in a step, in the order it is drawn."""
        x = next(batches).to(device, non_blocking=True)  # N x 3 x crop x crop, [0, 1]
        # a style per sample: its index picks the Gram targets, its one-hot row the CIN weights
        chosen = torch.randint(len(config.style), (x.shape[0],), device=device)
        with autocast:
            motion = temporal_loss.move(x) if config.temporal_weight else None
            frames = [x] if motion is None else [x, motion.moved]
            if config.flat_scene_weight:
                frames += flat_scene_loss.pair(x)
        return StepInputs(x, chosen, frames, motion)

    for _ in range(start):  # draw the steps already taken again: the run goes on with the crops it would have had
        next_inputs()
    for step in range(start + 1, last + 1):
        x, chosen, frames, motion = next_inputs()
        conditions = [F.one_hot(chosen, len(config.style)).float()] if multistyle else []
        with autocast:  # one call for all frames: DDP allows one forward per step
            stylized = as_the_runtime_runs(
                model,
                torch.cat(frames),
                margin if config.margin_in_training else 0,
                net_class.size_multiple,
                *(torch.cat([c] * len(frames)) for c in conditions),
            )
            y, *y_moved_and_flat = stylized.chunk(len(frames))
            losses = objective(x, y, chosen) | {"tv": config.tv_weight * total_variation(y.float())}
            if motion is not None:
                y_moved, *y_flat = y_moved_and_flat
                losses["temporal"] = config.temporal_weight * temporal_loss(y, y_moved, motion)
                if y_flat:
                    weight = config.temporal_weight * config.flat_scene_weight
                    losses["flat"] = weight * flat_scene_loss(*y_flat)
            total = torch.stack(list(losses.values())).sum()
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(config.lr, config.lr_final, step, config.steps)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(total).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            total.backward()
            optimizer.step()

        values = {name: float(v.detach()) for name, v in losses.items()}
        history.append(values)
        bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()})
        bar.update(1)
        if step % config.log_every == 0:
            scalars.add(step, {f"loss/{k}": v for k, v in values.items()} | {"loss/total": sum(values.values())})
        if writes and (step % config.checkpoint_every == 0 or step == end):
            log.info("step %d/%d %s", step, config.steps, " ".join(f"{k}={v:.4g}" for k, v in values.items()))
            save_state(run_dir, step, resumables)
            save_checkpoint(snapshot(step), run_dir / "latest.pt", half=config.half)
            scalars.image("sample", step, torch.cat([x[0], y[0].detach().float()], dim=2))
    bar.close()
    scalars.close()
    seconds = time.perf_counter() - started
    checksums = weight_checksums(net, ranks)
    if ranks.enabled:
        dist.barrier()
        dist.destroy_process_group()
    if config.dry_run:
        log_dry_run(len(history), seconds, config.steps)
        return TrainResult(None, len(history), history, seconds)
    if not ranks.is_main:
        return TrainResult(None, len(history), history, seconds)
    out.parent.mkdir(parents=True, exist_ok=True)
    final = snapshot(last)
    final.training["rank_checksums"] = checksums
    save_checkpoint(final, out, half=config.half)
    return TrainResult(out, len(history), history, seconds)
