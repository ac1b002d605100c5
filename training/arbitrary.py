"""Train the arbitrary-style network: distil a compact encoder from VGG, then train the decoder.

Phase 1, distillation (Wang et al. 2020): the compact encoder learns to reproduce VGG19's
relu1_1, relu2_1, relu3_1 and relu4_1 (`deepest`: relu4_1, the paper's, or relu3_1) on the
training photos (mean squared error per tap, each divided by the tap's mean square so they
count alike). Its first `forced_steps` feed each stage VGG's previous tap (teacher forcing):
each stage learns its own mapping without the error of the stages before it, then the chained
encoder learns to live with the sum.
Phase 2, the decoder (Huang & Belongie 2017): for a content crop c and a style crop s,
t = AdaIN(E(c), E(s)) at the deepest tap with the compact encoder E, g = D(t), and with VGG as
the loss network
    loss = ||VGG_deepest(g) - t||^2 + style_weight * sum_l (||mu_l(g) - mu_l(s)||^2 + ||sigma_l(g) - sigma_l(s)||^2)
so the decoder inverts the features the shipped model will actually compute, while the losses
stay those of the real VGG. With `content_space="encoder"` the content term is ||E(g) - t||^2
instead: t was made by E, and where E is still far from VGG at the deepest tap (relu4_1 is nine
convolutions deep in VGG) the real VGG's tap of g cannot reach it. With "vgg-adain" the content
term is ||VGG_deepest(g) - AdaIN(VGG_deepest(c), VGG_deepest(s))||^2: the paper's own target, which
the decoder then learns to reach from E's features (E's error included). With `encoder="vgg"` there is
no phase 1 and E is VGG itself. With `style_loss="gram"` the style term compares Gram matrices
(C x C, over C*H*W: which channels fire together, as the style distance measures) instead of
the moments. Each phase's learning rate may decay (cosine, `lr_final`).
The style term's taps may go deeper than the tap the style is moved at (`style_to`): relu4_1
carries most of a painting's Gram energy, and a decoder of a relu3_1 model never sees it
otherwise. `init` starts from a trained model (its encoder kept, phase 1 skipped) to fine-tune
its decoder; `encoder_from` takes only a trained model's encoder and trains a new decoder (another
kind, e.g. with `decoder_skips`: the content's shallower taps joined back in, models.adain.SkipDecoder).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from stylecast.core.errors import InputError
from stylecast.models.adain import ArbitraryStyleNet, CompactEncoder, adain, channel_stats, taps_to
from stylecast.models.checkpoint import Checkpoint, Family, InputContract, save_checkpoint
from stylecast.models.contract import MAX_MARGIN
from stylecast.models.vgg import ENV_WEIGHTS, LEGACY_ENV_WEIGHTS, load_vgg
from stylecast.training.common import (
    MAX_SEED,
    Scalars,
    average_gradients,
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
from stylecast.training.data import RandomCrops
from stylecast.training.losses import StyleLoss, gram_matrix

log = logging.getLogger("stylecast.train")

# the style term's VGG19 taps: Huang & Belongie's four, then Gatys' fifth
STYLE_TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass
class ArbitraryConfig:
    # a resumed run must have these as the run that wrote the state had them (the rest may change)
    RESUME_IDENTITY: ClassVar[tuple[str, ...]] = ("encoder", "width", "deepest", "decoder_skips", "decoder_upsampling")

    data: str = required("folder of content photos")
    styles: str = required("folder of style images (paintings) to train the decoder on")
    out: str = required("the trained model checkpoint (.pt)")
    encoder: str = option(
        "compact", "compact (distilled from VGG, needs no VGG at run time) | vgg", choices=("compact", "vgg")
    )
    distill_steps: int = option(2000, "phase 1: encoder distillation steps (compact encoder only)", at_least=0)
    forced_steps: int = option(
        0,
        "the first this many distillation steps feed each encoder stage VGG's previous tap instead of its own"
        " stage's (teacher forcing: no stage inherits another's error); the rest chain the stages as the model runs",
        at_least=0,
    )
    decoder_steps: int = option(8000, "phase 2: decoder steps", at_least=1)
    batch_size: int = option(8, "content and style crops per step", at_least=1)
    scale_size: int = option(320, "photos and paintings are scaled so their short side is this", at_least=32)
    crop_size: int = option(192, "random square crops of this side", at_least=32)
    lr: float = option(1e-4, "decoder: Adam learning rate (Huang & Belongie)", positive=True)
    distill_lr: float = option(1e-3, "encoder distillation: Adam learning rate", positive=True)
    lr_final: float = option(
        1.0,
        "each phase's learning rate at its last step, as a fraction of its first (cosine decay; 1 = constant)",
        at_least=0,
    )
    content_space: str = option(
        "vgg",
        "where the decoder's content term compares its output with the AdaIN target: vgg (VGG19's deepest tap)"
        " | encoder (the model's own encoder, the space the target was made in) | vgg-adain (VGG19's deepest tap,"
        " against AdaIN of VGG19's own taps of the content and style: what the paper's VGG model would paint)",
        choices=("vgg", "encoder", "vgg-adain"),
    )
    style_weight: float = option(10.0, "weight of the style term", at_least=0)
    style_loss: str = option(
        "moments",
        "the decoder's style term per tap: moments (squared errors of the channel means and standard deviations,"
        " Huang & Belongie's) | gram (squared error of the Gram matrices over C*H*W, Gatys' and the style"
        " distance's: it also matches how channels go together)",
        choices=("moments", "gram"),
    )
    width: int = option(32, "compact encoder width", at_least=1)
    deepest: str = option(
        "relu4_1",
        "the VGG19 tap the style is moved at: relu4_1 (the paper's; needs VGG19 weights to relu4_1) | relu3_1",
        choices=("relu4_1", "relu3_1"),
    )
    style_to: str | None = option(
        None,
        "the deepest VGG19 tap of the decoder's style term (default: --deepest); relu4_1 or relu5_1 under a"
        " relu3_1 model steers the texture energy the painting has there",
        choices=STYLE_TAPS[2:],
    )
    init: str | None = option(
        None,
        "start from this trained arbitrary model's weights (a checkpoint or shipped name, the same --encoder,"
        " --width and --deepest): its encoder is kept, phase 1 skipped (--distill-steps 0), its decoder fine-tuned",
    )
    encoder_from: str | None = option(
        None,
        "take only the encoder of this trained arbitrary model (a checkpoint or shipped name, the same --encoder,"
        " --width and --deepest; phase 1 skipped) and train a new decoder",
    )
    decoder_skips: tuple[str, ...] = option(
        (),
        "encoder taps shallower than --deepest the decoder takes from the content as well, each joined at its"
        " resolution (e.g. relu2_1 relu3_1: where things are, which the compact encoder's relu4_1 half loses)",
    )
    decoder_upsampling: str = option(
        "nearest",
        "how the decoder with skips upsamples: nearest (the paper's) | bilinear (no staircase from the deepest"
        " tap's cells along edges); with --init, the trained decoder's weights go on under this upsampling",
        choices=("nearest", "bilinear"),
    )
    margin: int = option(
        16,
        "reflected pixels the runtime adds around each frame and crops off again, declared in the checkpoint"
        " (the shipped model paints a band along its left edge without one: 28 grey levels off on noise,"
        " 8 with 16)",
        at_least=0,
        at_most=MAX_MARGIN,
    )
    vgg_weights: str | None = option(
        None, f"local VGG19 weights; default ${ENV_WEIGHTS['vgg19']} (or ${LEGACY_ENV_WEIGHTS}) or torchvision"
    )
    seed: int = option(0, "random seed", at_least=0, at_most=MAX_SEED)
    device: str = option("auto", "auto | cpu | cuda | cuda:N")
    workers: int = option(0, "DataLoader worker processes", at_least=0)
    checkpoint_every: int = option(200, "steps between resume states and model snapshots", at_least=1)
    run_dir: str | None = option(None, "resume state, config.json, TensorBoard; default <out>.run/")
    half: bool = option(True, "store the weights in fp16")
    dry_run: bool = option(False, "run two steps of each phase to check the setup and time them; write nothing")

    def __post_init__(self) -> None:
        check_choices(self)
        if self.init and self.encoder_from:
            raise InputError("--init takes a model's encoder and decoder, --encoder-from its encoder: give one of them")
        trained = "--init" if self.init else "--encoder-from" if self.encoder_from else None
        if trained and self.forced_steps:
            raise InputError(f"--forced-steps distils the encoder, which {trained} takes trained: give one of them")
        if trained:  # the encoder comes trained: the record says no distillation ran
            self.distill_steps = 0
        if self.decoder_upsampling != "nearest" and not self.decoder_skips:
            raise InputError("--decoder-upsampling is a setting of the decoder with skips: give --decoder-skips too")
        shallower = taps_to(self.deepest)[:-1]
        wrong = [t for t in self.decoder_skips if t not in shallower]
        if wrong:
            raise InputError(
                f"--decoder-skips {' '.join(wrong)}: choose among the taps shallower than --deepest {self.deepest}:"
                f" {', '.join(shallower)}"
            )
        if self.forced_steps > self.distill_steps:
            raise InputError(f"--forced-steps {self.forced_steps} is more than --distill-steps {self.distill_steps}")
        if self.style_to is not None and STYLE_TAPS.index(self.style_to) < STYLE_TAPS.index(self.deepest):
            raise InputError(f"--style-to {self.style_to} is shallower than --deepest {self.deepest}")

    @property
    def style_taps(self) -> tuple[str, ...]:
        """VGG19's taps of the decoder's style term, relu1_1 to `style_to`."""
        return STYLE_TAPS[: STYLE_TAPS.index(self.style_to or self.deepest) + 1]


def tap_errors(student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per student tap: its MSE over the teacher's mean square there (0 is exact, 1 as far as zeros)."""
    return {t: F.mse_loss(student[t], teacher[t]) / teacher[t].pow(2).mean().clamp(min=1e-8) for t in student}


def distillation_loss(student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor]) -> torch.Tensor:
    """The taps' errors summed, so each counts alike."""
    return sum(tap_errors(student, teacher).values())  # type: ignore[return-value]


def moment_loss(output: dict[str, torch.Tensor], style: dict[str, torch.Tensor]) -> torch.Tensor:
    """Over the taps of `output`: squared errors of the channel means and standard deviations."""
    total = torch.zeros((), device=next(iter(output.values())).device)
    for tap in output:
        (mo, so), (ms, ss) = channel_stats(output[tap]), channel_stats(style[tap])
        total = total + F.mse_loss(mo, ms) + F.mse_loss(so, ss)
    return total


def gram_loss(output: dict[str, torch.Tensor], style: dict[str, torch.Tensor]) -> torch.Tensor:
    """Over the taps of `output`: squared errors of the Gram matrices (N x C x C, over C*H*W),
    Gatys' term with each sample's style crop as its target."""
    return StyleLoss({tap: gram_matrix(style[tap]) for tap in output})(output)


STYLE_LOSSES = {"moments": moment_loss, "gram": gram_loss}


def start_from(module: torch.nn.Module, path: str, flag: str, part: str = "") -> None:
    """Load a trained arbitrary model's weights (those under `part`, e.g. "encoder.", or all) into
    `module`, which must be the same network (or part)."""
    ckpt = flag_checkpoint(flag, path)
    state = {name[len(part) :]: t.float() for name, t in ckpt.state_dict.items() if name.startswith(part)}
    what = f"the {part.rstrip('.')} being trained" if part else "the network being trained"
    other = InputError(f"{flag} {path} is a {ckpt.architecture} {ckpt.kwargs}, not {what}")
    if ckpt.family is not Family.ARBITRARY or state.keys() != module.state_dict().keys():
        raise other
    try:
        module.load_state_dict(state)
    except RuntimeError:  # the same layers at other sizes: another --width
        raise other from None


def train_arbitrary(config: ArbitraryConfig, progress: bool = True) -> Path | None:
    ranks, device = init_distributed(config.device)
    seed_everything(config.seed)
    out = Path(config.out)
    run_dir = run_folder(config)
    writes = ranks.is_main and not config.dry_run
    weights = load_vgg(config.vgg_weights)
    taps = taps_to(config.deepest)
    missing = [t for t in config.style_taps if t not in weights.available]
    if missing:
        deepest = config.style_taps[-1]
        raise InputError(
            f"the VGG weights from {weights.source} lack {', '.join(missing)}: give VGG19 weights to {deepest}"
            " (--vgg-weights) or train with --deepest relu3_1"
        )
    vgg = weights.build(list(config.style_taps)).to(device)
    log.info(
        "VGG from %s; style taps %s (%s), the style moved at %s; content term in the %s space",
        weights.source,
        list(config.style_taps),
        config.style_loss,
        config.deepest,
        config.content_space,
    )

    vgg_preprocessing = None
    if config.encoder == "vgg":
        p = weights.preprocessing
        vgg_preprocessing = {
            "channel_order": p.channel_order,
            "scale": p.scale,
            "mean": list(p.mean),
            "std": list(p.std),
        }
    kwargs: dict[str, Any] = {
        "transform": "adain",
        "encoder": config.encoder,
        "width": config.width,
        "vgg_preprocessing": vgg_preprocessing,
        "deepest": config.deepest,
        "skips": list(config.decoder_skips),
        "upsampling": config.decoder_upsampling,
    }
    net = ArbitraryStyleNet(**kwargs).to(device)
    if config.init:
        start_from(net, config.init, "--init")
        log.info("encoder and decoder from %s: no distillation", config.init)
    elif config.encoder_from:
        start_from(net.encoder, config.encoder_from, "--encoder-from", "encoder.")
        log.info("encoder from %s: no distillation; a new decoder", config.encoder_from)
    elif config.encoder == "vgg":
        net.encoder.load_state_dict({k: v for k, v in vgg.state_dict().items() if k in net.encoder.state_dict()})
    net.encoder.requires_grad_(config.encoder == "compact")

    def crops(folder: str) -> Iterator[torch.Tensor]:
        dataset = RandomCrops(folder, config.scale_size, config.crop_size)
        return endless_batches(dataset, config.batch_size, ranks, config.seed, config.workers)

    photos, paintings = crops(config.data), crops(config.styles)
    encoder_opt = (
        torch.optim.Adam(net.encoder.parameters(), lr=config.distill_lr) if config.encoder == "compact" else None
    )
    decoder_opt = torch.optim.Adam(net.decoder.parameters(), lr=config.lr)
    resumables = {"model": net, "encoder_optimizer": encoder_opt, "decoder_optimizer": decoder_opt}
    start = 0 if config.dry_run else load_state(run_dir, resumables, config)
    if writes:  # the run folder appears only once the data and VGG were accepted
        save_config(config, run_dir)
    torch.manual_seed(config.seed + ranks.rank)
    distill = config.distill_steps if config.encoder == "compact" else 0
    total_steps = distill + config.decoder_steps
    encoder = DDP(net.encoder) if ranks.enabled and distill else net.encoder
    decoder = DDP(net.decoder) if ranks.enabled else net.decoder
    scalars = Scalars(run_dir, enabled=writes)
    steps: Sequence[int] = range(start + 1, total_steps + 1)
    if config.dry_run:  # the first two steps of each phase
        steps = sorted({1, 2, distill + 1, distill + 2} & set(steps))
    bar = tqdm(
        total=len(steps),
        disable=None if progress and ranks.is_main else True,
        desc="train arbitrary",
        unit="step",
    )
    started = time.perf_counter()

    def snapshot(step: int) -> Checkpoint:
        return Checkpoint(
            architecture="arbitrary",
            kwargs=kwargs,
            state_dict={k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
            contract=InputContract(size_multiple=net.size_multiple, margin=config.margin),
            family=Family.ARBITRARY,
            styles=[],
            training={
                **vars(config),
                "vgg_source": weights.source,
                "seconds": time.perf_counter() - started,
                "world_size": ranks.world_size,
                "steps_taken": step,
            },
        )

    def draw(step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The crops of a step, in the order they are drawn: photos, then (phase 2) paintings."""
        return next(photos), next(paintings) if step > distill else None

    # a resumed run draws the steps already taken again, so it goes on with the crops it would have had
    for step in range(1, start + 1):
        draw(step)
    if start > distill:  # resumed in phase 2, whose first step would have frozen the encoder
        net.encoder.requires_grad_(False)
    for step in steps:
        c, s = draw(step)
        c = c.to(device)  # N x 3 x crop x crop
        if step <= distill:  # phase 1: the encoder mimics VGG
            with torch.no_grad():
                teacher = {t: f for t, f in vgg(c).items() if t in taps}
            if step == 1:
                assert isinstance(net.encoder, CompactEncoder)  # only the compact encoder is distilled
                net.encoder.calibrate(c, teacher)
            forced = step <= config.forced_steps
            if forced:  # around the DDP wrapper: the gradients are averaged below
                assert isinstance(net.encoder, CompactEncoder)
                student = net.encoder.forced(c, teacher)
            else:
                student = encoder(c)
            loss = distillation_loss(student, teacher)
            for group in encoder_opt.param_groups:  # type: ignore[union-attr]
                group["lr"] = cosine_lr(config.distill_lr, config.lr_final, step, distill)
            encoder_opt.zero_grad(set_to_none=True)  # type: ignore[union-attr]
            loss.backward()
            if forced:
                average_gradients(net.encoder, ranks)
            encoder_opt.step()  # type: ignore[union-attr]
            values = {"distill_forced" if forced else "distill": float(loss.detach())}
            if step in (config.forced_steps, distill) and ranks.is_main:  # how near VGG the encoder came
                errors = {t: float(e.detach()) for t, e in tap_errors(student, teacher).items()}
                what = "each stage alone (forced)" if forced else "distilled encoder"
                log.info("%s, error per tap: %s", what, " ".join(f"{t}={e:.3f}" for t, e in errors.items()))
                scalars.add(step, {f"distill_error{'_forced' if forced else ''}/{t}": e for t, e in errors.items()})
        else:  # phase 2: the decoder inverts AdaIN-moved features
            if step == distill + 1:
                net.encoder.requires_grad_(False)
            assert s is not None  # drawn in phase 2
            s = s.to(device)  # N x 3 x crop x crop
            with torch.no_grad():
                content_taps = net.encoder(c)  # the deepest: N x C x crop/2^k x crop/2^k
                style_features = net.encode(s)
                target = adain(content_taps[net.tap], *channel_stats(style_features))
                style_taps = vgg(s)
                # "vgg-adain": the paper's target, made from VGG's own taps (N x C x crop/2^k x crop/2^k)
                paper_target = (
                    adain(vgg(c)[net.tap], *channel_stats(style_taps[net.tap]))
                    if config.content_space == "vgg-adain"
                    else target
                )
            g = decoder(target, content_taps) if net.skips else decoder(target)
            g_taps = vgg(g)
            # the compact encoder's tap approximates VGG's; "encoder" compares in the space the target lives in
            g_content = net.encode(g) if config.content_space == "encoder" else g_taps[config.deepest]
            content_term = F.mse_loss(g_content, paper_target)
            for group in decoder_opt.param_groups:
                group["lr"] = cosine_lr(config.lr, config.lr_final, step - distill, config.decoder_steps)
            style_term = config.style_weight * STYLE_LOSSES[config.style_loss](g_taps, style_taps)
            loss = content_term + style_term
            decoder_opt.zero_grad(set_to_none=True)
            loss.backward()
            decoder_opt.step()
            values = {"content": float(content_term.detach()), "style": float(style_term.detach())}
        bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()})
        bar.update(1)
        scalars.add(step, {f"loss/{k}": v for k, v in values.items()})
        if writes and (step % config.checkpoint_every == 0 or step == total_steps):
            log.info("step %d/%d %s", step, total_steps, " ".join(f"{k}={v:.4g}" for k, v in values.items()))
            save_state(run_dir, step, resumables)
            save_checkpoint(snapshot(step), run_dir / "latest.pt", half=config.half)
    bar.close()
    scalars.close()
    checksums = weight_checksums(net, ranks)  # equal on every rank when the gradients were averaged
    if ranks.enabled:
        dist.barrier()
        dist.destroy_process_group()
    if config.dry_run:
        log_dry_run(len(steps), time.perf_counter() - started, total_steps)
    if not writes:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    final = snapshot(total_steps)
    final.training["rank_checksums"] = checksums
    save_checkpoint(final, out, half=config.half)
    return out
