"""What every trainer shares: device choice, seeding, run folders, resume state, logging."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from stylecast.core.atomic import atomic_torch_save
from stylecast.core.device import resolve_device
from stylecast.core.errors import InputError
from stylecast.models.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from stylecast.models.zoo import model_path

STATE_FILE = "state.pt"
CONFIG_FILE = "config.json"


def option(
    default: Any,
    help: str,
    at_least: float | None = None,
    positive: bool = False,
    at_most: float | None = None,
    choices: Collection[str] | None = None,
) -> Any:
    """A config dataclass field with its help text and the values the command line accepts
    (`at_least` or `positive`, and `at_most`; or one of `choices`), from which the flags, their
    help and their checks are generated."""
    metadata = {
        "help": help,
        "at_least": at_least,
        "positive": positive,
        "at_most": at_most,
        "choices": tuple(choices) if choices is not None else None,
    }
    if isinstance(default, (list, tuple, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def check_choices(config: Any) -> None:
    """Each field declared with `choices` holds one of them (or None): for configs built in
    code, which the command line's own check does not see."""
    for f in dataclasses.fields(config):
        allowed, value = f.metadata.get("choices"), getattr(config, f.name)
        if allowed and value is not None and value not in allowed:
            raise InputError(f"--{f.name.replace('_', '-')} {value!r}: choose one of {', '.join(allowed)}")


def required(help: str) -> Any:
    """A config dataclass field without a default (a required flag on the command line)."""
    return dataclasses.field(metadata={"help": help, "required": True})


@dataclass
class Distributed:
    """This process's place in a torchrun job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str) -> tuple[Distributed, torch.device]:
    """Join the torchrun job described by the environment (NCCL on GPUs, gloo on CPUs) and
    pick this process's device; alone, just resolve `device_name`."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed(), resolve_device(device_name)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    return Distributed(rank, world_size, local_rank), device


def all_gather_floats(value: float, info: Distributed) -> list[float]:
    """`value` from every rank (a list of one when not distributed)."""
    if not info.enabled:
        return [value]
    gathered: list[float] = [0.0] * info.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def average_gradients(module: torch.nn.Module, info: Distributed) -> None:
    """Average `module`'s gradients over the ranks, as DistributedDataParallel does for a forward
    it wraps (for a step whose forward goes around the wrapper)."""
    if not info.enabled:
        return
    for parameter in module.parameters():
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= info.world_size


def weight_checksums(module: torch.nn.Module, info: Distributed) -> list[float]:
    """Every rank's sum of `module`'s weights: all equal when DistributedDataParallel kept the
    ranks in step (it averages the gradients, so identical starts stay identical)."""
    with torch.no_grad():
        return all_gather_floats(float(sum(p.double().sum() for p in module.parameters())), info)


def log_dry_run(steps_run: int, seconds: float, total_steps: int) -> None:
    """What a --dry-run tells: the steps ran, and how long the whole run would take at that pace."""
    per_step = seconds / max(1, steps_run)
    logging.getLogger("stylecast.train").info(
        "dry run: %d steps fine, %.2f s per step; %d steps would take %.0f min",
        steps_run,
        per_step,
        total_steps,
        per_step * total_steps / 60,
    )


MAX_SEED = 2**32 - 1  # the largest seed NumPy's global generator takes


def cosine_lr(first: float, final_fraction: float, step: int, steps: int) -> float:
    """Cosine decay from `first` at step 1 to `first * final_fraction` at step `steps`; a function
    of the step, so a resumed run continues on the same curve."""
    progress = (step - 1) / max(1, steps - 1)
    return first * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cpu_computes_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic (AVX512-BF16: AMD Zen 4, Intel Cooper Lake; AMX:
    Sapphire Rapids). There oneDNN runs bf16 convolutions natively, and a Johnson training step
    takes about 0.6x the time of fp32 (standard net, batch 4 of 128 px crops, one Zen 4 core); on
    other CPUs bf16 is emulated and gains nothing. Linux only: elsewhere False."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_for(
    device: torch.device, enabled: bool, cpu_bf16: bool = False
) -> tuple[AbstractContextManager, torch.amp.GradScaler | None]:
    """Mixed precision on CUDA: bf16 where supported (no loss scaling needed), else fp16 + scaler.
    With `cpu_bf16`, also bf16 on a CPU that computes it natively (`cpu_computes_bf16`)."""
    if enabled and cpu_bf16 and device.type == "cpu" and cpu_computes_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16), None
    if not enabled or device.type != "cuda":
        return nullcontext(), None
    if torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16), None
    return torch.autocast("cuda", dtype=torch.float16), torch.amp.GradScaler("cuda")


def endless_batches(dataset: Dataset, batch_size: int, ranks: Distributed, seed: int, workers: int) -> Iterator[Any]:
    """Shuffled batches of `dataset` forever (training counts steps, not epochs). Under torchrun
    each rank draws its own share of every epoch (`batch_size` is per process)."""
    sampler: DistributedSampler | None = None
    if ranks.enabled:
        sampler = DistributedSampler(dataset, ranks.world_size, ranks.rank, seed=seed)
    loader = DataLoader(
        dataset, batch_size, shuffle=sampler is None, sampler=sampler, drop_last=True, num_workers=workers
    )
    if len(loader) == 0:  # drop_last leaves nothing: cycling it would spin without yielding
        raise InputError(f"fewer training images than one batch of {batch_size} per process")
    return _cycle(loader, sampler)


def _cycle(loader: DataLoader, sampler: DistributedSampler | None) -> Iterator[Any]:
    epoch = 0
    while True:
        if sampler is not None:  # a new shuffle each epoch, the same on every rank
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def run_folder(config: Any) -> Path:
    """Where a trainer keeps its resume state, config.json and logs: --run-dir, else <out>.run/."""
    return Path(config.run_dir) if config.run_dir else Path(config.out).with_suffix(".run")


def save_config(config: Any, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(json.dumps(dataclasses.asdict(config), indent=2, default=str) + "\n")


def save_state(run_dir: Path, step: int, modules: dict[str, Any]) -> None:
    """Everything needed to resume: step and the state dicts of model, optimizer, scaler..."""
    state = {"step": step, **{name: m.state_dict() for name, m in modules.items() if m is not None}}
    atomic_torch_save(state, run_dir / STATE_FILE)


def load_state(run_dir: Path, modules: dict[str, Any], config: Any) -> int:
    """Restore from run_dir/state.pt when present; returns the step to continue from. Call it
    before save_config: the state must come from a run with the same `RESUME_IDENTITY` fields
    (the network and what it learns), or this run would go on with another one's weights."""
    path = run_dir / STATE_FILE
    if not path.is_file():
        return 0
    saved_config = run_dir / CONFIG_FILE
    saved = json.loads(saved_config.read_text()) if saved_config.is_file() else {}
    for name in type(config).RESUME_IDENTITY:
        now = json.loads(json.dumps(getattr(config, name), default=str))  # tuples as the file has them
        if name in saved and saved[name] != now:
            raise InputError(
                f"{run_dir} holds the state of a run with --{name.replace('_', '-')} {_as_flag(saved[name])},"
                f" not {_as_flag(now)}: give another --run-dir (or --out) to start afresh"
            )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        for name, module in modules.items():
            if module is not None and name in state:
                module.load_state_dict(state[name])
        return int(state["step"])
    except Exception as exc:  # noqa: BLE001 - unpickling, missing keys and shape mismatches alike
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"cannot resume from {path} ({reason}): give another --run-dir to start afresh") from None


def _as_flag(value: Any) -> str:
    """A config value as it was typed: lists space-separated."""
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


class Scalars:
    """TensorBoard scalars when tensorboard is installed; silently nothing otherwise."""

    def __init__(self, log_dir: Path, enabled: bool = True):
        self.writer = None
        self.missing = False
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.missing = True
            return
        self.writer = SummaryWriter(str(log_dir))

    def add(self, step: int, values: dict[str, float]) -> None:
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(name, value, step)

    def image(self, tag: str, step: int, chw: torch.Tensor) -> None:
        if self.writer is not None:
            self.writer.add_image(tag, chw.clamp(0, 1), step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def flag_checkpoint(flag: str, path: str) -> Checkpoint:
    """The checkpoint or shipped model a flag (`--init`, `--teacher`) names, its load errors given
    as that flag's."""
    try:
        return load_checkpoint(model_path(path))
    except (CheckpointError, OSError) as exc:
        raise InputError(f"{flag} {path}: {exc}") from None
